/**
 * The local Functions host: loads the app's function files through the real @azure/functions
 * library and runs their HTTP, queue and timer triggers with host.json semantics. Used by
 * `npm start` when Azure Functions Core Tools (`func`) is not installed.
 */
import { randomUUID } from 'node:crypto';
import { InvocationContext } from '@azure/functions';
import { blobServiceOf, queueServiceOf } from '../../shared/storage/clients';
import { resolveStorageConnection } from '../../shared/storage/connection';
import { hookCallbacks, runAppHooks, type RegisteredFunction } from './functions-core';
import { readHostConfig, type HostConfig } from './host-config';
import { startHttpServer, type RunningHttpServer } from './http-server';
import { functionFiles, loadFunctions } from './loader';
import { poisonQueueNameOf, startQueueTrigger, type RunningQueueTrigger } from './queue-trigger';
import { parseTimerSchedule, startTimerTrigger } from './timer-trigger';
import { blobScheduleMonitor, shouldUseMonitor } from './schedule-monitor';
import { HOSTS_CONTAINER, hostIdOf, startTimerLock, type RunningTimerLock } from './timer-lock';

export interface LocalHostOptions {
  root: string;
  port: number;
  /** Function files to load; by default those package.json `main` names. */
  files?: readonly string[];
  log?: (line: string) => void;
  /** How long a received queue message stays hidden while its function runs (renewed); default 10 min. */
  queueLeaseMs?: number;
  /**
   * The host must shut down (a storage error it does not retry, as WebScriptHostExceptionHandler
   * .OnUnhandledExceptionAsync in azure-functions-host src/WebJobs.Script.WebHost/ stops the application).
   */
  onFatal?: (error: Error) => void;
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

/** A .NET TimeSpan as TimeSpan.ToString() writes it: `[d.]hh:mm:ss[.fffffff]`. */
export function timeSpanText(ms: number): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const totalSeconds = Math.floor(ms / 1000);
  const days = Math.floor(totalSeconds / 86400);
  const hms = `${pad(Math.floor(totalSeconds / 3600) % 24)}:${pad(Math.floor(totalSeconds / 60) % 60)}:${pad(totalSeconds % 60)}`;
  const fraction = ms % 1000 ? `.${String(ms % 1000).padStart(3, '0')}0000` : '';
  return `${days ? `${days}.` : ''}${hms}${fraction}`;
}

/**
 * One invocation as the Node worker runs it (InvocationHandler in azure-functions-nodejs-worker
 * src/eventHandlers/InvocationHandler.ts): the app's preInvocation hooks may replace the inputs and the handler,
 * the postInvocation hooks see (and may change) the result or the error, and an error left there fails the
 * invocation. The host bounds it by host.json functionTimeout (FunctionExecutor in azure-webjobs-sdk): past it the
 * invocation fails with "Timeout value of <functionTimeout> was exceeded by function: Functions.<name>" and, for an
 * out-of-process worker, the host restarts the worker (WebScriptHostExceptionHandler.OnTimeoutExceptionAsync). The
 * local host runs functions in its own process, so it cannot kill the abandoned call: it fails the invocation and
 * logs what the real host logs.
 */
export async function invokeFunction(
  fn: RegisteredFunction,
  inputs: unknown[],
  triggerMetadata: Record<string, unknown>,
  config: HostConfig,
  log: (line: string) => void,
): Promise<unknown> {
  const context = invocationContext(fn, triggerMetadata, log);
  const hookData: Record<string, unknown> = {};
  const pre = { hookData, appHookData, invocationContext: context, inputs, functionCallback: fn.handler };
  for (const hook of hookCallbacks('preInvocation')) await hook(pre);
  const post = {
    hookData,
    appHookData,
    invocationContext: context,
    inputs: pre.inputs,
    result: null as unknown,
    error: null as unknown,
  };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const limit = timeSpanText(config.functionTimeoutMs);
      log(
        `Timeout value of ${limit} exceeded by function 'Functions.${fn.name}' (Id: '${context.invocationId}'). Initiating cancellation.`,
      );
      log(
        `A function timeout has occurred. Restarting worker process executing invocationId '${context.invocationId}'. (the local host runs functions in-process: the call is abandoned, not killed)`,
      );
      reject(new Error(`Timeout value of ${limit} was exceeded by function: Functions.${fn.name}`));
    }, config.functionTimeoutMs);
  });
  try {
    post.result = await Promise.race([
      Promise.resolve().then(() => pre.functionCallback(...pre.inputs, context)),
      timeout,
    ]);
  } catch (err) {
    post.error = err;
  } finally {
    clearTimeout(timer);
  }
  for (const hook of hookCallbacks('postInvocation')) await hook(post);
  if (post.error instanceof Error) throw post.error;
  return post.result;
}

/** Shared by every invocation's hooks, as the worker's appHookData. */
const appHookData: Record<string, unknown> = {};

async function startQueueFunction(
  fn: RegisteredFunction,
  config: HostConfig,
  opts: LocalHostOptions,
  log: (line: string) => void,
): Promise<RunningQueueTrigger> {
  // the connection as the host reads it: a connection string in the setting, else <setting>__* for an identity
  const setting = fn.trigger.connection ?? 'AzureWebJobsStorage';
  const service = queueServiceOf(resolveStorageConnection(setting));
  const queueName = fn.trigger.queueName!;
  const queue = service.getQueueClient(queueName);
  // a poison queue has no poison queue of its own (QueueListenerFactory.CreatePoisonQueueReference)
  const poisonName = poisonQueueNameOf(queueName);
  const poisonQueue = poisonName ? service.getQueueClient(poisonName) : undefined;
  await Promise.all(
    (poisonQueue ? [queue, poisonQueue] : [queue]).map((q) =>
      q.createIfNotExists().catch((err: unknown) => {
        const e = err as { statusCode?: number; details?: { errorCode?: string }; message?: string };
        throw new Error(
          `queue ${q.name}: creating it failed with ${e.statusCode ?? 'no answer'} ${e.details?.errorCode ?? ''}`.trimEnd() +
            ` (check ${setting} and its key or identity): ${e.message ?? String(err)}`,
        );
      }),
    ),
  );
  return startQueueTrigger({
    queue,
    poisonQueue,
    options: config.queues,
    dataType: (fn.trigger as { dataType?: string }).dataType,
    leaseMs: opts.queueLeaseMs,
    onFatal: opts.onFatal,
    log: (line) => log(`[${fn.name}] ${line}`),
    invoke: async (payload, metadata) => {
      // the host adds `sys` to every trigger's binding data (the library camel-cases its keys)
      const sys = { methodName: fn.name, utcNow: new Date().toISOString(), randGuid: randomUUID() };
      await invokeFunction(fn, [payload], { ...metadata, sys }, config, log);
    },
  });
}

/**
 * A function's stray exception (thrown from a callback) or unhandled rejection is logged and the host keeps serving.
 * In the real host a function runs in the Node worker process: a stray error ends that process, and the host
 * outlives it, disposing and restarting the worker channel (RpcFunctionInvocationDispatcher.WorkerError in
 * azure-functions-host src/WebJobs.Script/Workers/Rpc/FunctionRegistration/). The local host has no separate worker
 * to restart, so it logs and carries on; the invocations that were running are not failed.
 */
export function keepRunningOnStrayErrors(log: (line: string) => void): void {
  const text = (error: unknown) => (error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.on('uncaughtException', (error) => log(`Worker uncaught exception (the host keeps running): ${text(error)}`));
  process.on('unhandledRejection', (reason) =>
    log(`Worker unhandled rejection (the host keeps running): ${text(reason)}`),
  );
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
    ? blobServiceOf(resolveStorageConnection('AzureWebJobsStorage')).getContainerClient(HOSTS_CONTAINER)
    : undefined;
  const hostId = hostIdOf(opts.root);
  const timers: RunningTimerLock[] = timerTriggers.map((fn) =>
    startTimerLock({
      container: locks!,
      hostId,
      functionName: fn.name,
      leasePeriodMs: config.singleton.listenerLockPeriodMs,
      recoveryPollMs: config.singleton.listenerLockRecoveryPollingIntervalMs,
      log: (line) => log(`[${fn.name}] ${line}`),
      start: () =>
        startTimerTrigger({
          schedule: fn.trigger.schedule!,
          runOnStartup: fn.trigger.runOnStartup,
          monitor: shouldUseMonitor(fn.trigger.schedule!, fn.trigger.useMonitor)
            ? blobScheduleMonitor({
                container: locks!,
                hostId,
                functionName: fn.name,
                log: (line) => log(`[${fn.name}] ${line}`),
              })
            : undefined,
          log: (line) => log(`[${fn.name}] ${line}`),
          invoke: async (timer) => {
            await invokeFunction(fn, [timer], {}, config, log);
          },
        }),
    }),
  );
  let server: RunningHttpServer;
  let draining: Promise<void> | undefined;
  let listenersStopped = false;
  try {
    server = await startHttpServer({
      port: opts.port,
      routePrefix: config.routePrefix,
      functions,
      log,
      invoke: (fn, inputs) => invokeFunction(fn, inputs, {}, config, log),
      drain: {
        // Drain mode (azure-functions-host HostController.cs Drain/DrainStatus): the queue listeners stop
        // fetching, running invocations finish; Completed once none is outstanding
        start: () => {
          if (draining) return;
          log('drain mode: the queue listeners stop fetching messages; running invocations finish');
          draining = Promise.all(queues.map((q) => q.stopPolling())).then(() => void (listenersStopped = true));
        },
        status: () => {
          const outstandingInvocations = queues.reduce((sum, q) => sum + q.inFlight, 0);
          const state = !draining
            ? 'Disabled'
            : outstandingInvocations > 0 || !listenersStopped
              ? 'InProgress'
              : 'Completed';
          return { state, outstandingInvocations, outstandingRetries: 0 };
        },
      },
    });
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
