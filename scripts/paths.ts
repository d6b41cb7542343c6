/** Where the project lives, found from the file (compiled scripts run from dist/scripts/). */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The folder with package.json and host.json (dist/ holds a copy of package.json, not host.json). */
function findProjectRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'host.json'))) return dir;
    if (path.dirname(dir) === dir) return process.cwd();
  }
}

export const PROJECT_ROOT = findProjectRoot(__dirname);
/** `npm run samples` writes here; later the local host uploads it to the `images` container. */
export const SAMPLES_DIR = path.join(PROJECT_ROOT, 'samples');

/**
 * Where `npm start` keeps Azurite's data and `npm run clean` deletes it: `AZURITE_LOCATION` (relative to the
 * project) or `.azurite`.
 */
export function azuriteLocation(env: NodeJS.ProcessEnv = process.env, root = PROJECT_ROOT): string {
  return path.resolve(root, env.AZURITE_LOCATION || '.azurite');
}

/**
 * Writes a generated file (the README's tables, the Kubernetes manifests, the Azure template) only when its
 * content changed, and says which it was.
 */
export function writeGenerated(file: string, next: string): void {
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '';
  if (next !== current) writeFileSync(file, next);
  console.log(`${path.relative(PROJECT_ROOT, file)} ${next === current ? 'is up to date' : 'regenerated'}`);
}
