/**
 * host.json as the Functions host reads it, for the settings the local host honours, with the
 * host's own defaults where host.json is silent.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { functionAllowList } from '../../shared/config';

export interface QueueOptions {
  /** Messages fetched per poll and processed in parallel. */
  readonly batchSize: number;
  /** A new batch is fetched when the messages in flight fall to this number. */
  readonly newBatchThreshold: number;
  /** Longest wait between polls of an empty queue (the back-off ceiling). */
  readonly maxPollingIntervalMs: number;
  /** How long a failed message stays invisible before its next delivery. */
  readonly visibilityTimeoutMs: number;
  /** Deliveries before a failing message moves to `<queue>-poison`. */
  readonly maxDequeueCount: number;
  readonly messageEncoding: 'base64' | 'none';
}

/** host.json `singleton` (azure-webjobs-sdk SingletonOptions.cs), the options the timers' listener lock uses. */
export interface SingletonLockOptions {
  /** ListenerLockPeriod: how long a listener's lease lasts (renewed at half-time); 15-60 s, a blob lease's range. */
  readonly listenerLockPeriodMs: number;
  /** ListenerLockRecoveryPollingInterval: how often a host without the lease tries again; at least 15 s. */
  readonly listenerLockRecoveryPollingIntervalMs: number;
}

export interface HostConfig {
  readonly routePrefix: string;
  readonly queues: QueueOptions;
  readonly singleton: SingletonLockOptions;
  readonly functionTimeoutMs: number;
  /** Only these functions run (host.json `functions`, or AzureFunctionsJobHost__functions__N settings); null: all. */
  readonly functions: readonly string[] | null;
}

/** `hh:mm:ss` or `d.hh:mm:ss` (a .NET TimeSpan) in milliseconds. */
export function parseTimeSpan(value: string, setting: string): number {
  const match = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$/.exec(value.trim());
  if (!match) throw new Error(`host.json ${setting}: expected a time span like "00:00:30" but received "${value}"`);
  const [, days = '0', h, m, s, fraction = '0'] = match;
  return (
    (((Number(days) * 24 + Number(h)) * 60 + Number(m)) * 60 + Number(s)) * 1000 +
    Math.round(Number(`0.${fraction}`) * 1000)
  );
}

/** Settings from host.json or from AzureFunctionsJobHost__* overrides (strings there, as all app settings are). */
type Int = number | string;
interface HostJson {
  extensions?: {
    http?: { routePrefix?: string };
    queues?: {
      batchSize?: Int;
      newBatchThreshold?: Int;
      maxPollingInterval?: string;
      visibilityTimeout?: string;
      maxDequeueCount?: Int;
      messageEncoding?: string;
    };
  };
  singleton?: { listenerLockPeriod?: string; listenerLockRecoveryPollingInterval?: string };
  functionTimeout?: string;
  functions?: unknown;
}

/**
 * host.json as the host's configuration sees it: HostJsonFileConfigurationSource.cs (azure-functions-host
 * src/WebJobs.Script/Config/) loads host.json under the section `AzureFunctionsJobHost`, and environment
 * variables come after it, so `AzureFunctionsJobHost__extensions__queues__batchSize=4` overrides
 * host.json's extensions.queues.batchSize. Configuration keys are case-insensitive. The `functions` list is
 * read by selectedFunctions.
 */
export function withEnvOverrides(json: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const copy = structuredClone(json);
  for (const [key, value] of Object.entries(env)) {
    const match = /^AzureFunctionsJobHost(?:__|:)(.+)$/i.exec(key);
    if (!match || value === undefined) continue;
    const parts = match[1].split(/__|:/).filter(Boolean);
    if (parts.length === 0 || parts[0].toLowerCase() === 'functions') continue;
    let node = copy;
    parts.forEach((part, i) => {
      const existing = Object.keys(node).find((k) => k.toLowerCase() === part.toLowerCase()) ?? part;
      if (i === parts.length - 1) return void (node[existing] = value);
      const child = node[existing];
      node = (node[existing] = child && typeof child === 'object' ? child : {}) as Record<string, unknown>;
    });
  }
  return copy;
}

function integer(value: Int | undefined, fallback: number, setting: string): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'number' ? value : /^\s*-?\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n))
    throw new Error(`host.json ${setting}: expected an integer but received ${JSON.stringify(value)}`);
  return n;
}

/** SingletonOptions.cs: lease periods must lie in a blob lease's range, the recovery interval not below it. */
function singletonOptions(json: HostJson['singleton'], env: NodeJS.ProcessEnv): SingletonLockOptions {
  const period = json?.listenerLockPeriod
    ? parseTimeSpan(json.listenerLockPeriod, 'singleton.listenerLockPeriod')
    : listenerLockPeriodDefaultMs(env);
  if (period < 15_000 || period > 60_000)
    throw new Error(
      `host.json singleton.listenerLockPeriod: expected between 00:00:15 and 00:01:00 (a blob lease's range) but received "${json?.listenerLockPeriod}"`,
    );
  const recovery = json?.listenerLockRecoveryPollingInterval
    ? parseTimeSpan(json.listenerLockRecoveryPollingInterval, 'singleton.listenerLockRecoveryPollingInterval')
    : 60_000;
  if (recovery < 15_000)
    throw new Error(
      `host.json singleton.listenerLockRecoveryPollingInterval: expected at least 00:00:15 but received "${json?.listenerLockRecoveryPollingInterval}"`,
    );
  return { listenerLockPeriodMs: period, listenerLockRecoveryPollingIntervalMs: recovery };
}

/**
 * ListenerLockPeriod when host.json is silent: 60 s (SingletonOptions.cs), 15 s when the host runs in
 * Development (azure-webjobs-sdk WebJobsServiceCollectionExtensions.cs). The local host stands in for
 * `func start`, which runs the host in Development, so Development is the default here.
 */
export function listenerLockPeriodDefaultMs(env: NodeJS.ProcessEnv = process.env): number {
  return (env.AZURE_FUNCTIONS_ENVIRONMENT ?? 'Development') === 'Development' ? 15_000 : 60_000;
}

/**
 * The function selection, as the Functions host reads it: AzureFunctionsJobHost__functions__0..N
 * settings override host.json's `functions` array (that is how one image runs one role per
 * Kubernetes Deployment).
 */
export function selectedFunctions(hostJson: unknown, env: NodeJS.ProcessEnv = process.env): string[] | null {
  const fromEnv = functionAllowList(env);
  if (fromEnv) return fromEnv;
  if (hostJson === undefined) return null;
  if (!Array.isArray(hostJson) || !hostJson.every((n) => typeof n === 'string'))
    throw new Error(
      `host.json functions: expected an array of function names but received ${JSON.stringify(hostJson)}`,
    );
  return hostJson;
}

/**
 * host.json `extensions.queues`, defaulted and bounded as the queue extension's QueuesOptions.cs (azure-sdk-for-net
 * sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Queues/src/Config/QueuesOptions.cs) bounds them: batchSize
 * 1 to 32 (the most a receive returns), newBatchThreshold at least 0, maxPollingInterval at least
 * QueuePollingIntervals.Minimum (100 ms), maxDequeueCount at least 1. The real host refuses to start on a value out
 * of range (the setter throws while the options are bound); so does this one, naming the setting.
 */
function queueOptions(q: NonNullable<NonNullable<HostJson['extensions']>['queues']>): QueueOptions {
  const atLeast = (n: number, min: number, setting: string, shown = String(min)) => {
    if (n < min)
      throw new Error(`host.json extensions.queues.${setting}: expected at least ${shown} but received ${n}`);
    return n;
  };
  const batchSize = atLeast(integer(q.batchSize, 16, 'extensions.queues.batchSize'), 1, 'batchSize');
  if (batchSize > 32)
    throw new Error(
      `host.json extensions.queues.batchSize: expected at most 32 (the most one receive returns) but received ${batchSize}`,
    );
  const encoding = (q.messageEncoding ?? 'base64').toLowerCase();
  if (encoding !== 'base64' && encoding !== 'none')
    throw new Error(
      `host.json extensions.queues.messageEncoding: expected "base64" or "none" but received "${q.messageEncoding}"`,
    );
  return {
    batchSize,
    // the host's default is batchSize / 2 (per core in newer versions; one core's worth here)
    newBatchThreshold: atLeast(
      integer(q.newBatchThreshold, Math.floor(batchSize / 2), 'extensions.queues.newBatchThreshold'),
      0,
      'newBatchThreshold',
    ),
    maxPollingIntervalMs: q.maxPollingInterval
      ? atLeast(
          parseTimeSpan(q.maxPollingInterval, 'extensions.queues.maxPollingInterval'),
          100,
          'maxPollingInterval',
          '00:00:00.100 (100 ms)',
        )
      : 60_000,
    visibilityTimeoutMs: q.visibilityTimeout
      ? parseTimeSpan(q.visibilityTimeout, 'extensions.queues.visibilityTimeout')
      : 0,
    maxDequeueCount: atLeast(integer(q.maxDequeueCount, 5, 'extensions.queues.maxDequeueCount'), 1, 'maxDequeueCount'),
    messageEncoding: encoding,
  };
}

export function readHostConfig(root: string, env: NodeJS.ProcessEnv = process.env): HostConfig {
  const file = path.join(root, 'host.json');
  const json = withEnvOverrides(JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>, env) as HostJson;
  return {
    routePrefix: (json.extensions?.http?.routePrefix ?? 'api').replace(/^\/+|\/+$/g, ''),
    functionTimeoutMs: json.functionTimeout ? parseTimeSpan(json.functionTimeout, 'functionTimeout') : 5 * 60 * 1000,
    functions: selectedFunctions(json.functions, env),
    singleton: singletonOptions(json.singleton, env),
    queues: queueOptions(json.extensions?.queues ?? {}),
  };
}
