/**
 * Which key a command sends as x-functions-key: --key, else IMAGE_PIPELINE_KEY, else, for an app on this
 * machine (localhost), the local host's own development key from the environment or local.settings.json, as
 * `npm start` reads them: LOCAL_HOST_FUNCTION_KEY, or LOCAL_HOST_MASTER_KEY for a command that needs the admin
 * level (purge, requeue). A remote app never gets the local keys: they are not its keys, and a key sent to
 * the wrong host is a key given away.
 */
import path from 'node:path';
import { loadLocalSettings } from '../local-settings';
import { KEY_SETTINGS } from '../local-host/keys';
import { PROJECT_ROOT } from '../paths';
import { KEY_ENV } from './api';

export type KeyLevel = 'function' | 'admin';

export interface ChosenKey {
  readonly key?: string;
  /** Where it came from, for the message when it is refused. */
  readonly source?: string;
}

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

export function chooseKey(
  level: KeyLevel,
  baseUrl: string,
  given: string | undefined,
  env: NodeJS.ProcessEnv,
  root = PROJECT_ROOT,
): ChosenKey {
  if (given) return { key: given, source: '--key' };
  const fromEnv = env[KEY_ENV]?.trim();
  if (fromEnv) return { key: fromEnv, source: KEY_ENV };
  if (!LOCAL_HOSTS.has(new URL(baseUrl).hostname)) return {};
  const name = (level === 'admin' ? KEY_SETTINGS.masterKey : KEY_SETTINGS.functionKey).env;
  // A variable that is set wins over the file, even empty ("no key known"), as loadLocalSettings applies them.
  const settings: NodeJS.ProcessEnv = { [name]: env[name] };
  if (env[name] === undefined) {
    delete settings[name];
    loadLocalSettings(root, settings);
  }
  const key = settings[name]?.trim();
  if (!key) return {};
  const source = env[name] === undefined ? `${name} in ${path.join(root, 'local.settings.json')}` : name;
  return { key, source };
}
