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

export interface HostConfig {
  readonly routePrefix: string;
  readonly queues: QueueOptions;
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

interface HostJson {
  extensions?: {
    http?: { routePrefix?: string };
    queues?: {
      batchSize?: number;
      newBatchThreshold?: number;
      maxPollingInterval?: string;
      visibilityTimeout?: string;
      maxDequeueCount?: number;
      messageEncoding?: string;
    };
  };
  functionTimeout?: string;
  functions?: unknown;
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

export function readHostConfig(root: string, env: NodeJS.ProcessEnv = process.env): HostConfig {
  const file = path.join(root, 'host.json');
  const json = JSON.parse(readFileSync(file, 'utf8')) as HostJson;
  const q = json.extensions?.queues ?? {};
  const batchSize = q.batchSize ?? 16;
  const encoding = (q.messageEncoding ?? 'base64').toLowerCase();
  if (encoding !== 'base64' && encoding !== 'none')
    throw new Error(
      `host.json extensions.queues.messageEncoding: expected "base64" or "none" but received "${q.messageEncoding}"`,
    );
  return {
    routePrefix: (json.extensions?.http?.routePrefix ?? 'api').replace(/^\/+|\/+$/g, ''),
    functionTimeoutMs: json.functionTimeout ? parseTimeSpan(json.functionTimeout, 'functionTimeout') : 5 * 60 * 1000,
    functions: selectedFunctions(json.functions, env),
    queues: {
      batchSize,
      // the host's default is batchSize / 2 (per core in newer versions; one core's worth here)
      newBatchThreshold: q.newBatchThreshold ?? Math.floor(batchSize / 2),
      maxPollingIntervalMs: q.maxPollingInterval
        ? parseTimeSpan(q.maxPollingInterval, 'extensions.queues.maxPollingInterval')
        : 60_000,
      visibilityTimeoutMs: q.visibilityTimeout
        ? parseTimeSpan(q.visibilityTimeout, 'extensions.queues.visibilityTimeout')
        : 0,
      maxDequeueCount: q.maxDequeueCount ?? 5,
      messageEncoding: encoding,
    },
  };
}
