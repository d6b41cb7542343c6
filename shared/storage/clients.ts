/**
 * One object holding the blob containers, queues and tables of the app. Resources are created
 * idempotently once per process (per Storage instance), not per request.
 * Two budgets for how long a storage call may take: workers keep the SDKs' patient defaults (a
 * storage hiccup costs a task a few seconds, and the host retries the message anyway), while the
 * HTTP routes get a short one (two tries, each cut off after STORAGE_REQUEST_TIMEOUT_MS), so an
 * outage answers 503 promptly instead of holding the client for the SDKs' ~16 s of retries.
 */
import { TableClient, type TableServiceClientOptions } from '@azure/data-tables';
import {
  BlobServiceClient,
  newPipeline as newBlobPipeline,
  type ContainerClient,
  type RequestPolicy,
  type RequestPolicyFactory,
  type WebResource,
} from '@azure/storage-blob';
import { QueueServiceClient, newPipeline as newQueuePipeline, type QueueClient } from '@azure/storage-queue';
import { appSettings, STORAGE_CONNECTION, type Settings } from '../config';
import { CAPABILITIES, type CapabilityName } from '../capabilities';
import { resolveStorageConnection, serviceUri, type StorageConnection } from './connection';
import { ResultLinks } from './links';
import { resourceNames, type ResourceNames } from './names';

/** Whether a storage SDK error carries this HTTP status (404 missing, 409 exists, 412 ETag mismatch, …). */
export const isStatus = (err: unknown, status: number): boolean =>
  (err as { statusCode?: unknown } | null)?.statusCode === status;

/** How long one storage call may take, retries included. */
export interface StorageBudget {
  /** Tries per call, the first included. */
  readonly tries: number;
  /** How long one try may wait for the answer to begin; an upload's bytes count in it. */
  readonly tryTimeoutMs: number;
  readonly retryDelayMs: number;
  readonly maxRetryDelayMs: number;
}

/** The HTTP routes' budget: a refused or throttled storage answers within ~1 s, a silent one within one timeout. */
export function requestBudget(settings: Settings = appSettings()): StorageBudget {
  return { tries: 2, tryTimeoutMs: settings.storageRequestTimeoutMs, retryDelayMs: 250, maxRetryDelayMs: 1000 };
}

/** Sets every try's client-side timeout (the storage SDKs' own tryTimeoutInMs only tells the server). */
function timeoutFactory(ms: number): RequestPolicyFactory {
  return {
    create: (next: RequestPolicy): RequestPolicy => ({
      sendRequest: (resource: WebResource) => {
        resource.timeout = ms;
        return next.sendRequest(resource);
      },
    }),
  };
}

/** A connection string (as tests and scripts pass) or a resolved connection. */
export type StorageTarget = string | StorageConnection;

const connectionOf = (target: StorageTarget): StorageConnection =>
  typeof target === 'string'
    ? { kind: 'connectionString', name: 'connection string', connectionString: target }
    : target;

function blobService(connection: StorageConnection, budget: StorageBudget | undefined): BlobServiceClient {
  const client =
    connection.kind === 'connectionString'
      ? BlobServiceClient.fromConnectionString(connection.connectionString)
      : new BlobServiceClient(serviceUri(connection, 'blob'), connection.credential);
  if (!budget) return client;
  const credential = connection.kind === 'identity' ? connection.credential : client.credential;
  const pipeline = newBlobPipeline(credential, { retryOptions: retryOptions(budget) });
  pipeline.factories.push(timeoutFactory(budget.tryTimeoutMs));
  return new BlobServiceClient(client.url, pipeline);
}

function queueService(connection: StorageConnection, budget: StorageBudget | undefined): QueueServiceClient {
  const client =
    connection.kind === 'connectionString'
      ? QueueServiceClient.fromConnectionString(connection.connectionString)
      : new QueueServiceClient(serviceUri(connection, 'queue'), connection.credential);
  if (!budget) return client;
  // The queue SDK keeps `credential` protected (the blob SDK exposes it): reuse what it parsed from the
  // connection string.
  const credential =
    connection.kind === 'identity'
      ? connection.credential
      : (client as unknown as { credential: Parameters<typeof newQueuePipeline>[0] }).credential;
  const pipeline = newQueuePipeline(credential, { retryOptions: retryOptions(budget) });
  pipeline.factories.push(timeoutFactory(budget.tryTimeoutMs));
  return new QueueServiceClient(client.url, pipeline);
}

/** A queue client on the connection (the local host's queue triggers use it with the SDK's defaults). */
export function queueServiceOf(target: StorageTarget): QueueServiceClient {
  return queueService(connectionOf(target), undefined);
}

/** A blob service client on the connection, with the SDK's defaults. */
export function blobServiceOf(target: StorageTarget): BlobServiceClient {
  return blobService(connectionOf(target), undefined);
}

const retryOptions = (budget: StorageBudget) => ({
  maxTries: budget.tries,
  retryDelayInMs: budget.retryDelayMs,
  maxRetryDelayInMs: budget.maxRetryDelayMs,
});

function tableOptions(connection: StorageConnection, budget: StorageBudget | undefined): TableServiceClientOptions {
  // Azurite serves plain http; the tables SDK refuses that unless told.
  const allowInsecureConnection =
    connection.kind === 'connectionString' &&
    /DefaultEndpointsProtocol=http;|TableEndpoint=http:/i.test(connection.connectionString);
  if (!budget) return { allowInsecureConnection };
  return {
    allowInsecureConnection,
    retryOptions: {
      maxRetries: budget.tries - 1,
      retryDelayInMs: budget.retryDelayMs,
      maxRetryDelayInMs: budget.maxRetryDelayMs,
    },
    additionalPolicies: [
      {
        position: 'perCall',
        policy: {
          name: 'tryTimeout',
          sendRequest: (request, next) => {
            request.timeout = budget.tryTimeoutMs;
            return next(request);
          },
        },
      },
    ],
  };
}

export class Storage {
  readonly names: ResourceNames;
  readonly images: ContainerClient;
  readonly processed: ContainerClient;
  /** Read-only links to result blobs (service SAS with an account key, user delegation SAS with an identity). */
  readonly results: ResultLinks;
  readonly tasks: TableClient;
  readonly deadLetters: TableClient;
  readonly workers: TableClient;
  readonly metrics: TableClient;
  readonly callbacks: TableClient;
  readonly jobs: TableClient;
  private readonly queues: QueueServiceClient;
  private ready: Promise<void> | undefined;

  /** `budget` undefined: the SDKs' defaults (what workers use). */
  constructor(target: StorageTarget, names: ResourceNames = resourceNames(), budget?: StorageBudget) {
    this.names = names;
    const connection = connectionOf(target);
    const blobs = blobService(connection, budget);
    this.queues = queueService(connection, budget);
    const options = tableOptions(connection, budget);
    const table = (name: string) =>
      connection.kind === 'connectionString'
        ? TableClient.fromConnectionString(connection.connectionString, name, options)
        : new TableClient(serviceUri(connection, 'table'), name, connection.credential, options);
    this.images = blobs.getContainerClient(names.images);
    this.processed = blobs.getContainerClient(names.processed);
    this.results = new ResultLinks(blobs, this.processed, connection);
    this.tasks = table(names.tasksTable);
    this.deadLetters = table(names.deadLettersTable);
    this.workers = table(names.workersTable);
    this.metrics = table(names.metricsTable);
    this.callbacks = table(names.callbacksTable);
    this.jobs = table(names.jobsTable);
  }

  /** The queue of completion callback checks and deliveries. */
  callbackQueue(): QueueClient {
    return this.queues.getQueueClient(this.names.callbacksQueue);
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
      this.callbacks.createTable().catch(ignoreExists),
      this.callbackQueue().createIfNotExists(),
      this.jobs.createTable().catch(ignoreExists),
      ...CAPABILITIES.flatMap((c) => [
        this.queue(c.name).createIfNotExists(),
        this.poisonQueue(c.name).createIfNotExists(),
      ]),
    ]);
  }
}

let processStorage: Storage | undefined;
let requestStorage: Storage | undefined;

/**
 * The storage of this process's queue and timer functions, from the AzureWebJobsStorage connection
 * (a connection string, or AzureWebJobsStorage__* for an identity: see connection.ts).
 */
export function appStorage(): Storage {
  processStorage ??= new Storage(resolveStorageConnection(STORAGE_CONNECTION));
  return processStorage;
}

/** The same storage for the HTTP routes, with the short request budget. */
export function httpStorage(): Storage {
  requestStorage ??= new Storage(resolveStorageConnection(STORAGE_CONNECTION), resourceNames(), requestBudget());
  return requestStorage;
}
