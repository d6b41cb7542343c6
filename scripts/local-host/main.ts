/**
 * `node dist/scripts/local-host/main.js [--port 7071] [--root DIR]`: the local Functions host as a process.
 * The app root (host.json, package.json `main`, local.settings.json) is this project unless --root names another,
 * e.g. the unpacked deployment zip, as AzureWebJobsScriptRoot names /home/site/wwwroot to the real host.
 * Loads local.settings.json like func, prints the functions and their URLs, and on SIGINT or
 * SIGTERM stops taking work, lets running invocations finish (bounded) and exits 0.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../paths';
import { loadLocalSettings } from '../local-settings';
import { loadRunSettings } from '../run-settings';
import { keepRunningOnStrayErrors, startLocalHost } from './host';

const USAGE =
  'usage: node dist/scripts/local-host/main.js [--port N] [--root DIR] (port: default 7071, or FUNCTIONS_HTTPWORKER_PORT / PORT; root: the app root, default this project, e.g. the unpacked deployment zip)';

async function main(argv: string[]): Promise<number> {
  let port: number;
  let root = PROJECT_ROOT;
  try {
    const { values } = parseArgs({ args: argv, options: { port: { type: 'string' }, root: { type: 'string' } } });
    if (values.root !== undefined) {
      root = path.resolve(values.root);
      if (!existsSync(path.join(root, 'host.json')))
        throw new Error(`expected --root to be an app root holding host.json but received '${values.root}'`);
    }
    port = Number(values.port ?? process.env.PORT ?? 7071);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new Error(`expected --port to be 0-65535 but received '${values.port ?? process.env.PORT}'`);
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    return 2;
  }
  loadLocalSettings(root);
  const { graceMs, queueLeaseSeconds } = loadRunSettings();
  keepRunningOnStrayErrors((line) => console.error(line));
  let fatal: ((error: Error) => void) | undefined;
  const failed = new Promise<Error>((resolve) => (fatal = resolve));
  const host = await startLocalHost({
    root,
    port,
    queueLeaseMs: queueLeaseSeconds * 1000,
    onFatal: (error) => fatal?.(error),
  });
  console.log(`Local Functions host (no Core Tools found): ${host.functions.length} functions`);
  for (const fn of host.functions) {
    const t = fn.trigger;
    const where =
      t.type === 'httpTrigger'
        ? `${(t.methods ?? []).join(',')} ${host.url}/${t.route}`
        : t.type === 'queueTrigger'
          ? `queue ${t.queueName}`
          : `schedule ${t.schedule}`;
    console.log(`  ${fn.name}: ${where}`);
  }
  console.log(`Host listening on ${host.url}`);
  const signalled = new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      console.log(`${signal}: stopping (waiting up to ${graceMs / 1000} s for running functions)`);
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  const error = await Promise.race([signalled.then(() => undefined), failed]);
  // as WebScriptHostExceptionHandler.OnUnhandledExceptionAsync (azure-functions-host src/WebJobs.Script.WebHost/)
  if (error) console.error(`An unhandled exception has occurred. Host is shutting down. ${error.message}`);
  await host.stop(graceMs);
  console.log('Host stopped');
  return error ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
