/**
 * The names of the app's blob containers, queues and tables, optionally under a namespace (lower-case
 * letters and digits) so several apps or test runs can share one storage account.
 */
import { CAPABILITIES, poisonQueueOf, type CapabilityName } from '../capabilities';
import { appSettings, readSettings, SETTINGS } from '../config';

export interface ResourceNames {
  readonly images: string;
  readonly processed: string;
  readonly tasksTable: string;
  readonly deadLettersTable: string;
  readonly workersTable: string;
  readonly metricsTable: string;
  /** Completion callback registrations (partition = job) and the queue of their checks and deliveries. */
  readonly callbacksTable: string;
  readonly callbacksQueue: string;
  /** The job index: one row per job, newest first (tasks/job-index.ts). */
  readonly jobsTable: string;
  queueOf(capability: CapabilityName): string;
  poisonQueueOf(capability: CapabilityName): string;
}

/** Throws a ConfigError for a namespace that STORAGE_NAMESPACE would not accept. */
export function resourceNames(namespace = appSettings().storageNamespace): ResourceNames {
  readSettings({ storageNamespace: SETTINGS.storageNamespace }, { [SETTINGS.storageNamespace.env]: namespace });
  const dash = namespace ? `${namespace}-` : '';
  const queue = (capability: CapabilityName) => `${dash}${CAPABILITIES.find((c) => c.name === capability)!.queue}`;
  return Object.freeze({
    images: `${dash}images`,
    processed: `${dash}processed`,
    tasksTable: `${namespace}tasks`,
    deadLettersTable: `${namespace}deadletters`,
    workersTable: `${namespace}workers`,
    metricsTable: `${namespace}metrics`,
    callbacksTable: `${namespace}callbacks`,
    callbacksQueue: `${dash}callbacks`,
    jobsTable: `${namespace}jobs`,
    queueOf: queue,
    poisonQueueOf: (capability: CapabilityName) => poisonQueueOf(queue(capability)),
  });
}
