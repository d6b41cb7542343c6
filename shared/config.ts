/**
 * Names of settings and storage resources, in one place: function files, the storage layer
 * and tests read them from here, never as repeated string literals.
 */
import { CAPABILITIES, poisonQueueOf, type CapabilityName } from './tasks/capabilities';

/** The app setting (and connection name of every trigger) holding the storage connection string. */
export const STORAGE_CONNECTION = 'AzureWebJobsStorage';

export interface ResourceNames {
  readonly images: string;
  readonly processed: string;
  readonly tasksTable: string;
  readonly deadLettersTable: string;
  readonly workersTable: string;
  readonly metricsTable: string;
  queueOf(capability: CapabilityName): string;
  poisonQueueOf(capability: CapabilityName): string;
}

/**
 * The Functions host's allow-list: the names in AzureFunctionsJobHost__functions__0..N, in index
 * order (blank entries skipped), or null when no such setting exists and every function runs.
 * Kubernetes uses it to run one role of the app per Deployment.
 */
export function functionAllowList(env: NodeJS.ProcessEnv = process.env): string[] | null {
  const entries = Object.entries(env)
    .map(([key, value]) => [/^AzureFunctionsJobHost__functions__(\d+)$/i.exec(key)?.[1], value] as const)
    .filter((e): e is readonly [string, string] => e[0] !== undefined && typeof e[1] === 'string' && e[1].trim() !== '')
    .sort((a, b) => Number(a[0]) - Number(b[0]))
    .map(([, value]) => value.trim());
  return entries.length ? entries : null;
}

/**
 * Resource names, optionally under a namespace (lower-case letters and digits) so several
 * apps or test runs can share one storage account without touching each other's data.
 */
export function resourceNames(namespace = process.env.STORAGE_NAMESPACE ?? ''): ResourceNames {
  if (!/^[a-z0-9]{0,20}$/.test(namespace)) {
    throw new Error(`STORAGE_NAMESPACE must be up to 20 lower-case letters or digits, received '${namespace}'`);
  }
  const dash = namespace ? `${namespace}-` : '';
  const queue = (capability: CapabilityName) => `${dash}${CAPABILITIES.find((c) => c.name === capability)!.queue}`;
  return Object.freeze({
    images: `${dash}images`,
    processed: `${dash}processed`,
    tasksTable: `${namespace}tasks`,
    deadLettersTable: `${namespace}deadletters`,
    workersTable: `${namespace}workers`,
    metricsTable: `${namespace}metrics`,
    queueOf: queue,
    poisonQueueOf: (capability: CapabilityName) => poisonQueueOf(queue(capability)),
  });
}

/** Request and job limits for the HTTP API (image limits live in imaging/limits.ts), read per request. */
export function apiLimits(env: NodeJS.ProcessEnv = process.env): { maxBodyBytes: number; maxImagesPerJob: number } {
  const read = (name: string, fallback: number) => {
    const value = Number(env[name] ?? fallback);
    if (!Number.isInteger(value) || value < 1)
      throw new Error(`${name} must be a positive integer, received '${env[name]}'`);
    return value;
  };
  return { maxBodyBytes: read('MAX_BODY_BYTES', 50 * 1024 * 1024), maxImagesPerJob: read('MAX_IMAGES_PER_JOB', 100) };
}
