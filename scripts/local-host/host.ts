/**
 * The local Functions host: loads the app's function files through the real @azure/functions
 * library and runs their HTTP, queue and timer triggers with host.json semantics. Used by
 * `npm start` when Azure Functions Core Tools (`func`) is not installed.
 */
import { randomUUID } from 'node:crypto';
import { InvocationContext } from '@azure/functions';
import { QueueServiceClient } from '@azure/storage-queue';
import { resolveConnectionString } from '../../shared/storage/connection';
import { runAppHooks, type RegisteredFunction } from './functions-core';
import { readHostConfig, type HostConfig } from './host-config';
import { startHttpServer, type RunningHttpServer } from './http-server';
import { functionFiles, loadFunctions } from './loader';
import { poisonQueueNameOf, startQueueTrigger, type RunningQueueTrigger } from './queue-trigger';
import { parseTimerSchedule, startTimerTrigger } from './timer-trigger';
import { BlobServiceClient } from '@azure/storage-blob';
import { HOSTS_CONTAINER, hostIdOf, listenerLockPeriodMs, startTimerLock, type RunningTimerLock } from './timer-lock';

export interface LocalHostOptions {
  root: string;
  port: number;
  /** Function files to load; by default those package.json `main` names. */
  files?: readonly string[];
  log?: (line: string) => void;
  /** How long a received queue message stays hidden while its function runs (renewed). */
  queueLeaseMs?: number;
}

export interface RunningLocalHost {
  readonly url: string;
  readonly functions: readonly RegisteredFunction[];
  readonly config: HostConfig;
  /** Stops taking work, waits for running invocations up to graceMs, and resolves. */
  stop(graceMs?: number): Promise<void>;
}

function invocationContext(
  fn: RegisteredFunction,
  triggerMetadata: Record<string, unknown>,
  log: (line: string) => void,
): InvocationContext {
  return new InvocationContext({
    invocationId: randomUUID(),
    functionName: fn.name,
    triggerMetadata,
    logHandler: (level, ...args) => log(`[${fn.name}] ${level}: ${args.map(String).join(' ')}`),
  });
}

async function startQueueFunction(
  fn: RegisteredFunction,
  config: HostConfig,
  opts: LocalHostOptions,
  log: (line: string) => void,
): Promise<RunningQueueTrigger> {
  const setting = fn.trigger.connection ?? 'AzureWebJobsStorage';
  const service = QueueServiceClient.fromConnectionString(resolveConnectionString(process.env[setting]));
  const queueName = fn.trigger.queueName!;
  const queue = service.getQueueClient(queueName);
  // a poison queue has no poison queue of its own (QueueListenerFactory.CreatePoisonQueueReference)
  const poisonName = poisonQueueNameOf(queueName);
  const poisonQueue = poisonName ? service.getQueueClient(poisonName) : undefined;
  await Promise.all([queue.createIfNotExists(), poisonQueue?.createIfNotExists()]);
  return startQueueTrigger({
    queue,
    poisonQueue,
    options: config.queues,
    dataType: (fn.trigger as { dataType?: string }).dataType,
    leaseMs: opts.queueLeaseMs,
    log: (line) => log(`[${fn.name}] ${line}`),
    invoke: async (payload, metadata) => {
      await fn.handler(payload, invocationContext(fn, { ...metadata }, log));
    },
  });
}

/** Keeps the selected functions, matched as the real host matches its allow-list (see below). */
export function selectFunctions(
  all: readonly RegisteredFunction[],
  selected: readonly string[] | null,
  log: (line: string) => void = () => undefined,
): readonly RegisteredFunction[] {
  if (!selected) return all;
  // As FunctionMetadataManager.ApplyAllowList in azure-functions-host: names match case-insensitively and a
  // name no function has is ignored (logged here as a warning), never an error.
  const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();
  const missing = selected.filter((name) => !all.some((f) => same(f.name, name)));
  log(`running only the selected functions: ${selected.join(', ')}`);
  if (missing.length)
    log(
      `warning: the function allow list names ${missing.map((n) => `"${n}"`).join(', ')}, which no function file registers (ignored); registered: ${all
        .map((f) => f.name)
        .sort()
        .join(', ')}`,
    );
  return all.filter((f) => selected.some((name) => same(f.name, name)));
}

export async function startLocalHost(opts: LocalHostOptions): Promise<RunningLocalHost> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const config = readHostConfig(opts.root);
  const functions = selectFunctions(loadFunctions(opts.files ?? functionFiles(opts.root)), config.functions, log);
  const byType = (type: string) => functions.filter((f) => f.trigger.type === type);
  const unsupported = functions.filter(
    (f) => !['httpTrigger', 'queueTrigger', 'timerTrigger'].includes(f.trigger.type),
  );
  for (const f of unsupported)
    log(`skipping ${f.name}: the local host does not run ${f.trigger.type} (use func start)`);

  await runAppHooks('appStart', opts.root);
  const queues = await Promise.all(byType('queueTrigger').map((f) => startQueueFunction(f, config, opts, log)));
  // each timer runs under the real host's singleton lock (a blob lease under the host id): see timer-lock.ts
  const timerTriggers = byType('timerTrigger');
  for (const fn of timerTriggers) parseTimerSchedule(fn.trigger.schedule!).next(new Date()); // a bad one stops start-up
  const locks = timerTriggers.length
    ? BlobServiceClient.fromConnectionString(
        resolveConnectionString(process.env.AzureWebJobsStorage),
      ).getContainerClient(HOSTS_CONTAINER)
    : undefined;
  const timers: RunningTimerLock[] = timerTriggers.map((fn) =>
    startTimerLock({
      container: locks!,
      hostId: hostIdOf(opts.root),
      functionName: fn.name,
      leasePeriodMs: listenerLockPeriodMs(),
      log: (line) => log(`[${fn.name}] ${line}`),
      start: () =>
        startTimerTrigger({
          schedule: fn.trigger.schedule!,
          runOnStartup: fn.trigger.runOnStartup,
          log: (line) => log(`[${fn.name}] ${line}`),
          invoke: async (timer) => {
            await fn.handler(timer, invocationContext(fn, {}, log));
          },
        }),
    }),
  );
  let server: RunningHttpServer;
  try {
    server = await startHttpServer({ port: opts.port, routePrefix: config.routePrefix, functions, log });
  } catch (err) {
    await Promise.all([...queues, ...timers].map((t) => t.stop(0)));
    throw err;
  }
  return {
    url: server.url,
    functions,
    config,
    stop: async (graceMs = 30000) => {
      await Promise.all([
        server.stop(graceMs),
        ...queues.map((q) => q.stop(graceMs)),
        ...timers.map((t) => t.stop(graceMs)),
      ]);
      await runAppHooks('appTerminate', opts.root);
    },
  };
}
