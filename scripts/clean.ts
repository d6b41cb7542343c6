/**
 * `npm run clean`: deletes the local Azurite data that `npm start` keeps, from the same place it keeps it
 * (`AZURITE_LOCATION`, from the environment or local.settings.json, else `.azurite`). It refuses a location that
 * holds the project (e.g. `AZURITE_LOCATION=.`) or is the home or root folder, so a slip cannot delete the checkout.
 */
import { existsSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { loadLocalSettings } from './local-settings';
import { azuriteLocation, PROJECT_ROOT } from './paths';

/** Why `location` must not be deleted, or undefined when it may be. */
export function unsafeToDelete(location: string, root = PROJECT_ROOT): string | undefined {
  const inside = path.relative(location, root);
  if (inside === '' || (!inside.startsWith('..') && !path.isAbsolute(inside)))
    return `it contains the project folder ${root}`;
  if (location === path.parse(location).root || location === homedir()) return 'it is the root or home folder';
  return undefined;
}

/** Deletes the Azurite data folder; returns what it did, for the message. */
export function clean(env: NodeJS.ProcessEnv = process.env, root = PROJECT_ROOT): string {
  const location = azuriteLocation(env, root);
  const unsafe = unsafeToDelete(location, root);
  if (unsafe) throw new Error(`Not deleting AZURITE_LOCATION ${location}: ${unsafe}`);
  if (!existsSync(location)) return `Nothing to delete: ${location} does not exist`;
  rmSync(location, { recursive: true, force: true });
  return `Deleted the local Azurite data in ${location}`;
}

if (require.main === module) {
  try {
    loadLocalSettings(PROJECT_ROOT);
    console.log(clean());
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}
