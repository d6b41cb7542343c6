/**
 * Function keys, as the Functions host checks them, for a local host that should refuse strangers
 * (LOCAL_HOST_AUTH=keys; off by default, as with `func start`). Mirrors
 * Azure/azure-functions-host src/WebJobs.Script.WebHost/Security/Authentication/Keys/AuthenticationLevelHandler.cs
 * (the key comes from the `x-functions-key` header, else the `code` query parameter; the header wins)
 * and .../Security/Authorization/AuthUtility.cs PrincipalHasAuthLevelClaim (the master key satisfies every
 * level; a function key satisfies `function`), with FunctionInvocationMiddleware.cs answering an
 * unauthorized request 401 with no body.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readSettings, type TextSetting } from '../../shared/config';

export type AuthLevel = 'anonymous' | 'function' | 'admin';

export interface HostKeys {
  readonly functionKey: string;
  readonly masterKey: string;
}

const KEY = /^([A-Za-z0-9_=-]{16,256})?$/;
const key = (env: string, meaning: string): TextSetting => ({
  kind: 'text',
  env,
  fallback: '',
  shownDefault: '(generated and printed at start)',
  pattern: KEY,
  expected: '16-256 letters, digits, _, - or =',
  secret: true,
  meaning,
  reason: 'a fixed key lets scripts and tests call the host; a generated one is printed once',
});

export const KEY_SETTINGS = {
  auth: {
    kind: 'text',
    env: 'LOCAL_HOST_AUTH',
    fallback: 'none',
    pattern: /^(none|keys)$/,
    expected: 'none or keys',
    meaning: 'whether the local host checks function keys (authLevel function and admin)',
    reason: 'func start checks none; keys lets a local run prove that a keyless call is refused',
  },
  functionKey: key('LOCAL_HOST_FUNCTION_KEY', 'the function (host) key: routes of level function'),
  masterKey: key('LOCAL_HOST_MASTER_KEY', 'the master key: every route, including level admin'),
} as const satisfies Record<string, TextSetting>;

const newKey = () => randomBytes(32).toString('base64url');

/** The keys the host checks, or null when it checks none; `generated` names the keys it made up. */
export function hostKeys(env: NodeJS.ProcessEnv = process.env): { keys: HostKeys; generated: string[] } | null {
  const settings = readSettings(KEY_SETTINGS, env);
  if (settings.auth !== 'keys') return null;
  const generated: string[] = [];
  const pick = (value: string, name: string) => {
    if (value) return value;
    generated.push(name);
    return newKey();
  };
  return {
    keys: { functionKey: pick(settings.functionKey, 'function'), masterKey: pick(settings.masterKey, 'master') },
    generated,
  };
}

/** Equal without telling by its timing how much of the key matched. */
function sameKey(given: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** The level a request's key grants: the header first, else `?code=`. */
export function grantedLevel(header: string | undefined, code: string | null, keys: HostKeys): AuthLevel {
  const given = header ?? code ?? '';
  if (!given) return 'anonymous';
  if (sameKey(given, keys.masterKey)) return 'admin';
  if (sameKey(given, keys.functionKey)) return 'function';
  return 'anonymous';
}

export function allows(required: string | undefined, granted: AuthLevel): boolean {
  const level = (required ?? 'anonymous').toLowerCase();
  if (level === 'anonymous' || granted === 'admin') return true;
  return level === 'function' && granted === 'function';
}
