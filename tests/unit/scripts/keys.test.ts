/**
 * Function keys in the local host (LOCAL_HOST_AUTH=keys), as the Functions host checks them:
 * Azure/azure-functions-host src/WebJobs.Script.WebHost/Security/Authentication/Keys/AuthenticationLevelHandler.cs
 * (x-functions-key header first, else ?code=), .../Security/Authorization/AuthUtility.cs
 * PrincipalHasAuthLevelClaim (the master key satisfies every level) and
 * .../Middleware/FunctionInvocationMiddleware.cs (an unauthorized call is an empty 401).
 */
import { ConfigError } from '../../../shared/errors';
import type { CoreBinding, RegisteredFunction } from '../../../scripts/local-host/functions-core';
import { startHttpServer, type RunningHttpServer } from '../../../scripts/local-host/http-server';
import { allows, grantedLevel, hostKeys } from '../../../scripts/local-host/keys';

const keys = { functionKey: 'function-key-0123456789', masterKey: 'master-key-0123456789ab' };

function fn(name: string, authLevel: string): RegisteredFunction {
  const trigger: CoreBinding = { type: 'httpTrigger', direction: 'in', route: name, methods: ['GET'], authLevel };
  return {
    name,
    metadata: { name, bindings: { trigger } },
    trigger,
    handler: () => ({ status: 200, jsonBody: { ran: name } }),
  };
}

describe('which level a key grants', () => {
  it('the master key is admin, the function key function, anything else anonymous; the header wins over ?code=', () => {
    expect(grantedLevel(keys.masterKey, null, keys)).toBe('admin');
    expect(grantedLevel(undefined, keys.functionKey, keys)).toBe('function');
    expect(grantedLevel('wrong', keys.masterKey, keys)).toBe('anonymous');
    expect(grantedLevel(undefined, null, keys)).toBe('anonymous');
    expect(grantedLevel('', null, keys)).toBe('anonymous');
  });

  it.each([
    ['anonymous', 'anonymous', true],
    ['function', 'anonymous', false],
    ['function', 'function', true],
    ['function', 'admin', true],
    ['admin', 'function', false],
    ['admin', 'admin', true],
  ] as const)('a %s route with a %s key: %s', (required, granted, allowed) => {
    expect(allows(required, granted)).toBe(allowed);
  });

  it('keys are off by default (as func start), generated when not given, and refused when malformed', () => {
    expect(hostKeys({})).toBeNull();
    const generated = hostKeys({ LOCAL_HOST_AUTH: 'keys' })!;
    expect(generated.generated).toEqual(['function', 'master']);
    expect(generated.keys.functionKey).not.toBe(generated.keys.masterKey);
    expect(hostKeys({ LOCAL_HOST_AUTH: 'keys', LOCAL_HOST_MASTER_KEY: keys.masterKey })!.generated).toEqual([
      'function',
    ]);
    expect(() => hostKeys({ LOCAL_HOST_AUTH: 'yes' })).toThrow(ConfigError);
    expect(() => hostKeys({ LOCAL_HOST_AUTH: 'keys', LOCAL_HOST_FUNCTION_KEY: 'short' })).toThrow(ConfigError);
  });

  it('a refused key is never echoed: the error gives its length only', () => {
    const pasted = 'Abcdefghijklmnop+qrstuvwxyz/0123456789==';
    let error: unknown;
    try {
      hostKeys({ LOCAL_HOST_AUTH: 'keys', LOCAL_HOST_MASTER_KEY: pasted });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const { message, errors } = error as ConfigError;
    expect(message).toMatch(/LOCAL_HOST_MASTER_KEY but received a value of 40 characters \(not shown/);
    expect(JSON.stringify({ message, errors })).not.toContain('qrstuvwxyz');
  });
});

describe('the local host with keys on', () => {
  let server: RunningHttpServer;
  beforeAll(async () => {
    server = await startHttpServer({
      port: 0,
      routePrefix: 'api',
      functions: [fn('open', 'anonymous'), fn('data', 'function'), fn('purge', 'admin')],
      log: () => undefined,
      keys,
    });
  });
  afterAll(() => server.stop(0));

  const status = async (route: string, init: { key?: string; code?: string } = {}) => {
    const query = init.code ? `?code=${init.code}` : '';
    const res = await fetch(`${server.url}/${route}${query}`, {
      headers: init.key ? { 'x-functions-key': init.key } : {},
    });
    return { status: res.status, body: await res.text() };
  };

  it('answers the host ping (GET or POST, uncached, empty) and the homepage without a key', async () => {
    // HostController.cs Ping is anonymous; HomepageMiddleware.cs serves `/` as HTML
    for (const method of ['GET', 'POST']) {
      const ping = await fetch(server.url.replace(/\/api$/, '/admin/host/ping'), { method });
      expect([ping.status, await ping.text(), ping.headers.get('cache-control')]).toEqual([
        200,
        '',
        'no-store, no-cache',
      ]);
    }
    const home = await fetch(server.url.replace(/\/api$/, '/'));
    expect([home.status, home.headers.get('content-type')]).toEqual([200, 'text/html']);
    expect(await home.text()).toContain('Your Functions app is up and running');
  });

  it('answers a keyless call to a keyed route 401 with no body, and runs it with the right key', async () => {
    expect(await status('open')).toEqual({ status: 200, body: '{"ran":"open"}' });
    expect(await status('data')).toEqual({ status: 401, body: '' });
    expect(await status('data', { key: 'not-a-key' })).toEqual({ status: 401, body: '' });
    expect((await status('data', { key: keys.functionKey })).status).toBe(200);
    expect((await status('data', { code: keys.functionKey })).status).toBe(200);
    expect((await status('data', { key: 'wrong', code: keys.functionKey })).status).toBe(401);
    expect((await status('purge', { key: keys.functionKey })).status).toBe(401);
    expect((await status('purge', { key: keys.masterKey })).status).toBe(200);
    expect((await status('data', { key: keys.masterKey })).status).toBe(200);
  });
});
