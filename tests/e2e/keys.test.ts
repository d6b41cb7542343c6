/**
 * Keys on every route (issue 14): the built local host with LOCAL_HOST_AUTH=keys and known keys, and every
 * HTTP route the function files register (read from the registrations, not a hand list, so a new route is
 * covered the day it is added). anonymous routes answer without a key; function routes answer an empty 401
 * without one or with a wrong one, and not 401 with the function key (header or ?code=); admin routes answer
 * 401 to the function key and not 401 to the master key. The host's checks mirror the real host
 * (scripts/local-host/keys.ts cites AuthenticationLevelHandler.cs, AuthUtility.cs and
 * FunctionInvocationMiddleware.cs in Azure/azure-functions-host). Needs the build.
 */
import path from 'node:path';
import { Storage } from '../../shared/storage/clients';
import { resourceNames } from '../../shared/storage/names';
import { startAzurite, type RunningAzurite } from '../../scripts/azurite';
import { functionFiles, loadFunctions } from '../../scripts/local-host/loader';
import type { RegisteredFunction } from '../../scripts/local-host/functions-core';
import { seedSampleImages } from '../../scripts/seed';
import { HOST_MAIN, spawnApp, type HostProcess, keyedAppEnv } from '../helpers/host';
import { uniqueNamespace } from '../helpers/storage';

jest.mock('@azure/functions-core', () => jest.requireActual('../../scripts/local-host/functions-core').functionsCore, {
  virtual: true,
});

const ROOT = path.resolve(__dirname, '../..');
const FUNCTION_KEY = 'test-function-key-0000000000';
const MASTER_KEY = 'test-master-key-00000000000000';

/** A plausible value for each route parameter; an unknown one gets `x` (the route must still be keyed). */
const PARAMS: Record<string, string> = {
  name: 'sample_640x480.jpg',
  job_id: '00000000-0000-4000-8000-000000000000',
  task_id: '00000000-0000-4000-8000-000000000000_0000',
  capability: 'light',
  file: 'dashboard.js',
};

interface Route {
  readonly fn: string;
  readonly method: string;
  readonly path: string;
  readonly level: string;
}

function routesOf(functions: readonly RegisteredFunction[]): Route[] {
  return functions
    .filter((f) => f.trigger.type === 'httpTrigger')
    .flatMap((f) =>
      (f.trigger.methods ?? ['GET']).map((method) => ({
        fn: f.name,
        method: String(method).toUpperCase(),
        path: String(f.trigger.route ?? f.name).replace(/\{(\w+)[^}]*\}/g, (_, p: string) => PARAMS[p] ?? 'x'),
        level: String(f.trigger.authLevel ?? 'function').toLowerCase(),
      })),
    );
}

let azurite: RunningAzurite;
let host: HostProcess;
let routes: Route[];

beforeAll(async () => {
  routes = routesOf(loadFunctions(functionFiles(ROOT)));
  azurite = await startAzurite();
  const namespace = uniqueNamespace();
  await seedSampleImages(new Storage(azurite.connectionString, resourceNames(namespace)));
  host = await spawnApp(
    HOST_MAIN,
    {
      ...keyedAppEnv(azurite.connectionString, namespace, { functionKey: FUNCTION_KEY, masterKey: MASTER_KEY }),
    },
    /Host listening on/,
  );
}, 60000);

afterAll(async () => {
  if (host && host.child.exitCode === null) {
    host.child.kill('SIGKILL');
    await host.exited;
  }
  await azurite?.stop();
});

/** Status and body of one call; a read body, so no socket is left open. */
async function call(route: Route, how: { key?: string; code?: string } = {}): Promise<[number, string]> {
  const url = new URL(`${host.url}/${route.path}`);
  if (how.code) url.searchParams.set('code', how.code);
  const res = await fetch(url, {
    method: route.method,
    headers: how.key ? { 'x-functions-key': how.key } : {},
    redirect: 'manual',
  });
  return [res.status, await res.text()];
}

const statuses = async (level: string, how: { key?: string; code?: string }) => {
  const answers: string[] = [];
  for (const route of routes.filter((r) => r.level === level)) {
    const [status] = await call(route, how);
    answers.push(`${route.method} /${route.path} (${route.fn}) → ${status === 401 ? 401 : 'not 401'}`);
  }
  return answers;
};
const expected = (level: string, outcome: 401 | 'not 401') =>
  routes.filter((r) => r.level === level).map((r) => `${r.method} /${r.path} (${r.fn}) → ${outcome}`);

describe('LOCAL_HOST_AUTH=keys: every registered HTTP route at its level', () => {
  it('covers every level, and only the public routes are anonymous', () => {
    expect(new Set(routes.map((r) => r.level))).toEqual(new Set(['anonymous', 'function', 'admin']));
    expect(
      routes
        .filter((r) => r.level === 'anonymous')
        .map((r) => r.fn)
        .sort(),
    ).toEqual(['dashboard', 'dashboardAssets', 'filters', 'health', 'openapi']);
  });

  it('anonymous routes answer without a key', async () => {
    expect(await statuses('anonymous', {})).toEqual(expected('anonymous', 'not 401'));
  });

  it('function routes: an empty 401 without a key or with a wrong one', async () => {
    expect(await statuses('function', {})).toEqual(expected('function', 401));
    expect(await statuses('function', { key: 'not-the-key-000000000000' })).toEqual(expected('function', 401));
    expect(await statuses('function', { code: 'not-the-key-000000000000' })).toEqual(expected('function', 401));
    const [status, body] = await call(routes.find((r) => r.level === 'function')!);
    expect([status, body]).toEqual([401, '']);
  });

  it('function routes: not 401 with the function key, as the header or as ?code=', async () => {
    expect(await statuses('function', { key: FUNCTION_KEY })).toEqual(expected('function', 'not 401'));
    expect(await statuses('function', { code: FUNCTION_KEY })).toEqual(expected('function', 'not 401'));
  });

  it('admin routes: 401 without a key and with the function key; not 401 with the master key', async () => {
    expect(await statuses('admin', {})).toEqual(expected('admin', 401));
    expect(await statuses('admin', { key: FUNCTION_KEY })).toEqual(expected('admin', 401));
    expect(await statuses('admin', { key: MASTER_KEY })).toEqual(expected('admin', 'not 401'));
  });

  it('the master key opens the function routes too', async () => {
    expect(await statuses('function', { key: MASTER_KEY })).toEqual(expected('function', 'not 401'));
  });

  it('a keyed read works end to end: the image list and one image with the function key', async () => {
    const list = await fetch(`${host.url}/images`, { headers: { 'x-functions-key': FUNCTION_KEY } });
    expect(list.status).toBe(200);
    // not PARAMS.name: an admin route may have deleted that one
    const image = await fetch(`${host.url}/images/sample_1280x720.jpg`, {
      headers: { 'x-functions-key': FUNCTION_KEY },
    });
    expect([image.status, image.headers.get('content-type')]).toEqual([200, 'image/jpeg']);
  });
});
