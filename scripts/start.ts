/**
 * `npm start`: Azurite (data kept in .azurite/) + the sample images + the function app, with
 * `func start` when Azure Functions Core Tools is installed and the local host otherwise.
 * Ctrl-C or SIGTERM stops the host gracefully, then Azurite, and exits 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { ALLOCATOR_ENV, STORAGE_CONNECTION } from '../shared/config';
import { Storage } from '../shared/storage/clients';
import { azuriteConnectionString, type AzuritePorts } from '../shared/storage/connection';
import { isListening, startAzurite, type RunningAzurite } from './azurite';
import { hostKeys, KEY_SETTINGS } from './local-host/keys';
import { loadLocalSettings } from './local-settings';
import { azuriteLocation, PROJECT_ROOT } from './paths';
import { loadRunSettings } from './run-settings';
import { seedSampleImages } from './seed';
import { resourceNames } from '../shared/storage/names';

/** An Azurite already on these ports is reused (e.g. one left running after a crash); anything else is an error. */
async function azuriteOn(ports: AzuritePorts): Promise<'free' | 'azurite'> {
  const used = await Promise.all([ports.blob, ports.queue, ports.table].map(isListening));
  if (!used.some(Boolean)) return 'free';
  try {
    await BlobServiceClient.fromConnectionString(azuriteConnectionString(ports)).getProperties({
      abortSignal: AbortSignal.timeout(3000),
    });
    return 'azurite';
  } catch {
    const taken = [ports.blob, ports.queue, ports.table].filter((_, i) => used[i]);
    throw new Error(
      `Port(s) ${taken.join(', ')} are in use by something that is not Azurite. Stop it, or choose other ports with AZURITE_BLOB_PORT, AZURITE_QUEUE_PORT and AZURITE_TABLE_PORT.`,
    );
  }
}

function onPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, command);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** Core Tools' `func`, unless LOCAL_HOST_ONLY=1 asks for the local host. */
const coreTools = (): string | undefined => (process.env.LOCAL_HOST_ONLY === '1' ? undefined : onPath('func'));

/**
 * With LOCAL_HOST_AUTH=keys (local.settings.json sets it, with development keys), the keys the local host
 * will check, made up here when unset so they can be printed ready to paste. `func start` checks no keys:
 * said so instead.
 */
function keyLines(env: NodeJS.ProcessEnv, func: string | undefined, port: number): string[] {
  const configured = hostKeys(env);
  if (!configured) return ['  Keys:       none checked (LOCAL_HOST_AUTH=none): every route answers without a key'];
  if (func)
    return [
      '  Keys:       func start checks no keys (LOCAL_HOST_AUTH applies to the local host only): every route',
      '              answers without one; LOCAL_HOST_ONLY=1 npm start runs the local host, which checks them',
    ];
  env[KEY_SETTINGS.functionKey.env] = configured.keys.functionKey;
  env[KEY_SETTINGS.masterKey.env] = configured.keys.masterKey;
  return [
    '  Keys:       LOCAL_HOST_AUTH=keys: data routes need the function key, requeue, job delete and purge the master key;',
    configured.generated.length
      ? '              send it as the x-functions-key header (generated: give it to the CLI with --key). Paste:'
      : '              send it as the x-functions-key header (the CLI reads them from local.settings.json). Paste:',
    `              export KEY=${configured.keys.functionKey} MASTER_KEY=${configured.keys.masterKey}`,
    `              curl -H "x-functions-key: $KEY" http://localhost:${port}/api/workers`,
  ];
}

function startHost(port: number, env: NodeJS.ProcessEnv, func: string | undefined): ChildProcess {
  const [command, args] = func
    ? [func, ['start', '--port', String(port)]]
    : [process.execPath, [path.join(PROJECT_ROOT, 'dist/scripts/local-host/main.js'), '--port', String(port)]];
  console.log(
    func
      ? `Azure Functions Core Tools found: ${func} start`
      : 'Azure Functions Core Tools not found: using the local host',
  );
  return spawn(command, args, { cwd: PROJECT_ROOT, env, stdio: 'inherit' });
}

async function main(): Promise<number> {
  loadLocalSettings(PROJECT_ROOT);
  const settings = loadRunSettings();
  const { port } = settings;
  const ports = { blob: settings.azuriteBlobPort, queue: settings.azuriteQueuePort, table: settings.azuriteTablePort };
  const location = azuriteLocation();
  let azurite: RunningAzurite | undefined;
  if ((await azuriteOn(ports)) === 'azurite')
    console.log(`Using the Azurite already listening on ports ${ports.blob}, ${ports.queue}, ${ports.table}`);
  else azurite = await startAzurite({ ports, location, detached: true });
  const connectionString = azuriteConnectionString(ports);
  // the host process starts with the allocator sharp workers need (a value already set wins)
  const env = { ...ALLOCATOR_ENV, ...process.env, [STORAGE_CONNECTION]: connectionString };
  process.env[STORAGE_CONNECTION] = connectionString;

  const storage = new Storage(connectionString, resourceNames());
  const uploaded = await seedSampleImages(storage);
  if (uploaded.length)
    console.log(`Uploaded ${uploaded.length} sample images to the ${storage.names.images} container`);

  const func = coreTools();
  const keys = keyLines(env, func, port);
  const keysChecked = !func && hostKeys(env) !== null;
  const host = startHost(port, env, func);
  console.log(
    [
      '',
      `  API:        http://localhost:${port}/api   (try: curl http://localhost:${port}/api/health)`,
      `  Dashboard:  http://localhost:${port}/api/dashboard${keysChecked ? '   (asks for the function key)' : ''}`,
      ...keys,
      `  Azurite:    blob http://127.0.0.1:${ports.blob}, queue http://127.0.0.1:${ports.queue}, table http://127.0.0.1:${ports.table}${azurite ? `, data in ${path.relative(PROJECT_ROOT, location)}/` : ''}`,
      `  Storage Explorer connection string: ${connectionString}`,
      '  Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );

  const hostExit = new Promise<number>((resolve) =>
    host.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))),
  );
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping the host, then Azurite`);
    if (host.exitCode === null) host.kill('SIGTERM');
    const killer = setTimeout(() => host.kill('SIGKILL'), settings.graceMs + 5000);
    await hostExit;
    clearTimeout(killer);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  const code = await hostExit;
  await azurite?.stop();
  if (!stopping) console.error(`The host exited on its own (code ${code})`);
  return stopping ? 0 : code || 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
