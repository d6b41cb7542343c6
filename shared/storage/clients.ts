/**
 * One object holding the blob containers, queues and tables of the app. Resources are created
 * idempotently once per process (per Storage instance), not per request.
 */
import { TableClient } from '@azure/data-tables';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { QueueServiceClient, type QueueClient } from '@azure/storage-queue';
import { STORAGE_CONNECTION } from '../config';
import { CAPABILITIES, type CapabilityName } from '../capabilities';
import { resolveConnectionString } from './connection';
import { resourceNames, type ResourceNames } from './names';

/** Whether a storage SDK error carries this HTTP status (404 missing, 409 exists, 412 ETag mismatch, …). */
export const isStatus = (err: unknown, status: number): boolean =>
  (err as { statusCode?: unknown } | null)?.statusCode === status;

export class Storage {
  readonly names: ResourceNames;
  readonly images: ContainerClient;
  readonly processed: ContainerClient;
  readonly tasks: TableClient;
  readonly deadLetters: TableClient;
  readonly workers: TableClient;
  readonly metrics: TableClient;
  private readonly queues: QueueServiceClient;
  private ready: Promise<void> | undefined;

  constructor(connectionString: string, names: ResourceNames = resourceNames()) {
    this.names = names;
    const blobs = BlobServiceClient.fromConnectionString(connectionString);
    this.queues = QueueServiceClient.fromConnectionString(connectionString);
    // Azurite serves plain http; the tables SDK refuses that unless told.
    const tableOptions = {
      allowInsecureConnection: /DefaultEndpointsProtocol=http;|TableEndpoint=http:/i.test(connectionString),
    };
    this.images = blobs.getContainerClient(names.images);
    this.processed = blobs.getContainerClient(names.processed);
    this.tasks = TableClient.fromConnectionString(connectionString, names.tasksTable, tableOptions);
    this.deadLetters = TableClient.fromConnectionString(connectionString, names.deadLettersTable, tableOptions);
    this.workers = TableClient.fromConnectionString(connectionString, names.workersTable, tableOptions);
    this.metrics = TableClient.fromConnectionString(connectionString, names.metricsTable, tableOptions);
  }

  queue(capability: CapabilityName): QueueClient {
    return this.queues.getQueueClient(this.names.queueOf(capability));
  }

  poisonQueue(capability: CapabilityName): QueueClient {
    return this.queues.getQueueClient(this.names.poisonQueueOf(capability));
  }

  /** Creates every container, queue and table if missing; later calls reuse the first result. */
  ensureResources(): Promise<void> {
    this.ready ??= this.createAll().catch((err: unknown) => {
      this.ready = undefined; // a transient failure must not poison every later call
      throw err;
    });
    return this.ready;
  }

  private async createAll(): Promise<void> {
    const ignoreExists = (err: unknown) => {
      if (!isStatus(err, 409)) throw err;
    };
    await Promise.all([
      this.images.createIfNotExists(),
      this.processed.createIfNotExists(),
      this.tasks.createTable().catch(ignoreExists),
      this.deadLetters.createTable().catch(ignoreExists),
      this.workers.createTable().catch(ignoreExists),
      this.metrics.createTable().catch(ignoreExists),
      ...CAPABILITIES.flatMap((c) => [
        this.queue(c.name).createIfNotExists(),
        this.poisonQueue(c.name).createIfNotExists(),
      ]),
    ]);
  }
}

let processStorage: Storage | undefined;

/** The storage of this process, from the AzureWebJobsStorage setting. */
export function appStorage(): Storage {
  processStorage ??= new Storage(resolveConnectionString(process.env[STORAGE_CONNECTION]));
  return processStorage;
}
