/**
 * A storage-queue trigger with the semantics of the Functions host's queue listener (host.json
 * `extensions.queues`): batched polls with exponential back-off, a lease renewed while the
 * function runs, retries after `visibilityTimeout` and `<queue>-poison` after `maxDequeueCount`.
 * A queue whose name ends in `-poison` has no poison queue (QueueListenerFactory.CreatePoisonQueueReference
 * in azure-sdk-for-net sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Queues/src/Listeners/):
 * there a failed or undecodable message is left hidden until its lease ends and then tried again
 * (QueueProcessor.CompleteProcessingMessageAsync, HandlePoisonMessageAsync in
 * sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/Shared/Queues/QueueProcessor.cs).
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { QueueClient, ReceivedMessageItem } from '@azure/storage-queue';
import type { QueueOptions } from './host-config';

/**
 * The queue trigger's binding data as a Node function receives it in `context.triggerMetadata`: the host sends
 * every value that is not a string as JSON (GrpcMessageConversionExtensions.ToRpcDefault in azure-functions-host
 * src/WebJobs.Script.Grpc/MessageExtensions/), so the times are ISO strings ("2024-06-03T10:11:12+00:00", as
 * Json.NET writes a DateTimeOffset) and the dequeue count a number; the library camel-cases the keys
 * (fromRpcTriggerMetadata.ts).
 */
export interface QueueTriggerMetadata {
  id: string;
  dequeueCount: number;
  insertionTime?: string;
  expirationTime?: string;
  nextVisibleTime?: string;
  popReceipt: string;
  /** The message as the Node library puts it in triggerMetadata: parsed when it is JSON, keys camel-cased. */
  queueTrigger: unknown;
}

export interface QueueTriggerOptions {
  queue: QueueClient; // the trigger's queue
  /** `<queue>-poison`; none for a queue that is itself a poison queue (see poisonQueueOf). */
  poisonQueue: QueueClient | undefined;
  options: QueueOptions;
  /** The trigger binding's dataType: `binary` hands the function the message bytes. */
  dataType?: string;
  /**
   * Runs the function; rejects = failure. payload: the decoded bytes (dataType binary), else the
   * decoded text parsed as JSON when it is JSON (object/array/number/boolean/null), else the text.
   */
  invoke(payload: unknown, metadata: QueueTriggerMetadata): Promise<void>;
  log?: (line: string) => void;
  /**
   * How long a received message stays hidden while its function runs; renewed at half-life while running. Default
   * 10 minutes, as the host's QueueListener (`_visibilityTimeout = TimeSpan.FromMinutes(10)`, renewed when halfway to
   * expiring).
   */
  leaseMs?: number;
  /**
   * A storage error the host does not retry stopped the polling (see isTransient); the host shuts down, as the
   * real one does when QueueListener rethrows it.
   */
  onFatal?: (error: Error) => void;
  /** First (and minimum) poll interval of the back-off; default 100. */
  minPollingIntervalMs?: number;
}

export interface RunningQueueTrigger {
  stop(graceMs?: number): Promise<void>;
  /** Stops fetching messages (drain mode); running invocations go on. */
  stopPolling(): Promise<void>;
  readonly inFlight: number;
}

/** The storage service takes at most 32 messages per receive. */
const MAX_RECEIVE = 32;

interface Delivery {
  readonly done: Promise<void>;
  abandon(): void;
}

interface Lease {
  abandon(): void;
  release(): Promise<string>;
}

/** Storage takes whole seconds; round up so a message never reappears sooner than configured. */
const seconds = (ms: number): number => Math.ceil(ms / 1000);

const reasonOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** The lease of a running message in the real host: QueueListener's `_visibilityTimeout`. */
export const DEFAULT_LEASE_MS = 10 * 60 * 1000;

/** A DateTimeOffset as Json.NET writes it: ISO 8601 with a `+00:00` offset, fraction only when there is one. */
export function jsonNetDate(date: Date | undefined): string | undefined {
  if (!date) return undefined;
  return date
    .toISOString()
    .replace(/\.000Z$/, '+00:00')
    .replace(/(\.\d+?)0*Z$/, '$1+00:00');
}

interface StorageError {
  statusCode?: number;
  code?: string;
  details?: { errorCode?: string };
}

const errorCodeOf = (err: unknown): string | undefined => {
  const e = err as StorageError;
  return e.details?.errorCode ?? (typeof e.code === 'string' ? e.code : undefined);
};

/**
 * Which polling errors the host backs off from: as QueueListener.ExecuteAsync (azure-sdk-for-net
 * sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Queues/src/Listeners/QueueListener.cs) a missing queue
 * (404 QueueNotFound), a queue being deleted or disabled (409) and server errors (5xx); every other
 * RequestFailedException (403 AuthenticationFailed, a bad key, 400) is rethrown, reaches the host's exception
 * handler and stops the host. Throttling (429, 408) and network errors, which the real host's storage client retries
 * before they reach the listener, are backed off from here too.
 */
export function isTransient(err: unknown): boolean {
  const status = (err as StorageError).statusCode;
  if (status === undefined || status === 0) return true; // no answer: the network, not the request
  if (status >= 500 || status === 429 || status === 408) return true;
  const code = errorCodeOf(err);
  if (status === 404) return code === 'QueueNotFound';
  if (status === 409) return code === 'QueueBeingDeleted' || code === 'QueueDisabled';
  return false;
}

/** The poison queue of a queue: `<queue>-poison`, or none when the queue is itself a poison queue (as the host). */
export function poisonQueueNameOf(queueName: string): string | undefined {
  return queueName.endsWith('-poison') ? undefined : `${queueName}-poison`;
}

/**
 * The bytes of a message, or undefined when base64 is expected and the text is not strictly base64 (the host poisons
 * those).
 */
function decodeBytes(messageText: string, encoding: QueueOptions['messageEncoding']): Buffer | undefined {
  if (encoding === 'none') return Buffer.from(messageText, 'utf8');
  const bytes = Buffer.from(messageText, 'base64');
  // Node skips characters outside the alphabet instead of failing; a round trip exposes them.
  const unpadded = (text: string) => text.replace(/=+$/, '');
  return unpadded(bytes.toString('base64')) === unpadded(messageText) ? bytes : undefined;
}

/** As the Node library's toCamelCaseValue (src/converters/toCamelCase.ts): first letter of each key lower-cased. */
function camelCased(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(camelCased);
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k.charAt(0).toLowerCase() + k.slice(1), camelCased(v)]),
  );
}

/** As the Node.js worker hands trigger data to a function: JSON when it parses, else the string. */
function parsePayload(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function startQueueTrigger(o: QueueTriggerOptions): RunningQueueTrigger {
  const { queue, poisonQueue, options } = o;
  const log = o.log ?? (() => undefined);
  const leaseMs = o.leaseMs ?? DEFAULT_LEASE_MS;
  const minPollMs = o.minPollingIntervalMs ?? 100;
  const stopping = new AbortController();
  const stopped = new Promise<void>((resolve) =>
    stopping.signal.addEventListener('abort', () => resolve(), { once: true }),
  );
  const inFlight = new Set<Delivery>();

  /** Storage calls that fail are logged: the message simply becomes visible again when its lease ends. */
  async function attempt(what: string, call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (err) {
      log(`queue ${queue.name}: ${what} failed: ${reasonOf(err)}`);
    }
  }

  /** Without a poison queue the message is left hidden until its lease ends, then tried again (as the host). */
  function moveToPoison(message: ReceivedMessageItem, popReceipt: string): Promise<void> {
    if (!poisonQueue) {
      log(
        `queue ${queue.name}: message ${message.messageId} stays until its lease ends: a poison queue has no poison queue`,
      );
      return Promise.resolve();
    }
    return attempt(`moving message ${message.messageId} to ${poisonQueue.name}`, async () => {
      await poisonQueue.createIfNotExists(); // the host creates the poison queue on first use
      // As received, still encoded, and with the service's default time-to-live (7 days), not the original's:
      // QueueProcessor.CopyMessageToPoisonQueueAsync sends message.Body through
      // StorageQueueExtensions.AddMessageAndCreateIfNotExistsAsync (azure-sdk-for-net
      // sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/Shared/), which passes no timeToLive.
      await poisonQueue.sendMessage(message.messageText);
      await queue.deleteMessage(message.messageId, popReceipt);
    });
  }

  /** Keeps the message hidden while its function runs, so a slow function is not delivered twice. */
  function holdLease(message: ReceivedMessageItem): Lease {
    let popReceipt = message.popReceipt;
    let renewing = Promise.resolve();
    const renew = () => {
      renewing = renewing.then(() =>
        attempt(`renewing the lease of message ${message.messageId}`, async () => {
          popReceipt =
            (await queue.updateMessage(message.messageId, popReceipt, undefined, seconds(leaseMs))).popReceipt ??
            popReceipt;
        }),
      );
    };
    const timer = setInterval(renew, leaseMs / 2);
    return {
      abandon: () => clearInterval(timer),
      release: async () => {
        clearInterval(timer);
        await renewing; // a renewal under way changes the pop receipt the next call needs
        return popReceipt;
      },
    };
  }

  async function run(bytes: Buffer, message: ReceivedMessageItem): Promise<boolean> {
    const text = bytes.toString('utf8');
    const metadata: QueueTriggerMetadata = {
      id: message.messageId,
      dequeueCount: message.dequeueCount,
      insertionTime: jsonNetDate(message.insertedOn),
      expirationTime: jsonNetDate(message.expiresOn),
      nextVisibleTime: jsonNetDate(message.nextVisibleOn),
      popReceipt: message.popReceipt,
      // the Node library parses trigger metadata too (fromRpcTypedData tryJsonParse), so it is no raw text
      queueTrigger: camelCased(parsePayload(text)),
    };
    try {
      await o.invoke(o.dataType === 'binary' ? bytes : parsePayload(text), metadata);
      return true;
    } catch (err) {
      log(
        `queue ${queue.name}: message ${message.messageId} failed (delivery ${message.dequeueCount} of ${options.maxDequeueCount}): ${reasonOf(err)}`,
      );
      return false;
    }
  }

  function deliver(message: ReceivedMessageItem): Delivery {
    let abandoned = false;
    let lease: Lease | undefined;
    const settle = async () => {
      const bytes = decodeBytes(message.messageText, options.messageEncoding);
      if (bytes === undefined) {
        log(
          `queue ${queue.name}: message ${message.messageId} is not valid base64 (host.json messageEncoding is "base64")`,
        );
        return moveToPoison(message, message.popReceipt);
      }
      // QueueProcessor.BeginProcessingMessageAsync: a message delivered more than maxDequeueCount times
      // (its host died mid-run each time) is poisoned without being invoked
      if (message.dequeueCount > options.maxDequeueCount) return moveToPoison(message, message.popReceipt);
      lease = holdLease(message);
      const succeeded = await run(bytes, message);
      const popReceipt = await lease.release();
      if (abandoned) return; // stop() gave up on it: leave it to reappear when its lease ends
      if (succeeded)
        return attempt(`deleting message ${message.messageId}`, () =>
          queue.deleteMessage(message.messageId, popReceipt),
        );
      if (!poisonQueue) return; // hidden until the lease ends, so a failing poison function does not spin
      if (message.dequeueCount >= options.maxDequeueCount) return moveToPoison(message, popReceipt);
      return attempt(`releasing message ${message.messageId} for a retry`, () =>
        queue.updateMessage(message.messageId, popReceipt, undefined, seconds(options.visibilityTimeoutMs)),
      );
    };
    const delivery: Delivery = {
      done: settle().finally(() => inFlight.delete(delivery)),
      abandon: () => {
        abandoned = true;
        lease?.abandon();
      },
    };
    return delivery;
  }

  async function receiveBatch(): Promise<ReceivedMessageItem[]> {
    try {
      const numberOfMessages = Math.min(options.batchSize, MAX_RECEIVE);
      // Not cancelled by stop(): a receive cut off after the service dequeued its messages would leave them
      // hidden for a whole lease (10 minutes). One that returns after stop() hands them straight back. This
      // is the local host's own choice for a clean drain (the "finish or go straight back"), not
      // behaviour read in the real QueueListener.
      const response = await queue.receiveMessages({ numberOfMessages, visibilityTimeout: seconds(leaseMs) });
      if (stopping.signal.aborted) {
        await Promise.all(
          response.receivedMessageItems.map((m) =>
            attempt(`handing message ${m.messageId} back at stop`, () =>
              queue.updateMessage(m.messageId, m.popReceipt, undefined, 0),
            ),
          ),
        );
        return [];
      }
      return response.receivedMessageItems;
    } catch (err) {
      if (stopping.signal.aborted) return [];
      if (isTransient(err)) {
        log(`queue ${queue.name}: polling failed, backing off: ${reasonOf(err)}`);
        return [];
      }
      const status = (err as StorageError).statusCode;
      const fatal = new Error(
        `queue ${queue.name}: polling failed with ${status} ${errorCodeOf(err) ?? ''}`.trimEnd() +
          `, which the host does not retry (check the connection setting and its key): ${reasonOf(err)}`,
      );
      log(fatal.message);
      stopping.abort();
      o.onFatal?.(fatal);
      return [];
    }
  }

  /** The host fetches again only once the messages in flight have fallen to newBatchThreshold. */
  async function waitForCapacity(): Promise<void> {
    while (inFlight.size > options.newBatchThreshold && !stopping.signal.aborted) {
      await Promise.race([...[...inFlight].map((d) => d.done), stopped]);
    }
  }

  async function poll(): Promise<void> {
    let idleMs = minPollMs;
    while (!stopping.signal.aborted) {
      await waitForCapacity();
      if (stopping.signal.aborted) return;
      const messages = await receiveBatch();
      if (messages.length > 0) {
        idleMs = minPollMs;
        for (const message of messages) inFlight.add(deliver(message));
        continue;
      }
      // An empty queue and an unreachable one back off alike, doubling up to maxPollingInterval.
      await delay(idleMs, undefined, { signal: stopping.signal }).catch(() => undefined);
      idleMs = Math.min(idleMs * 2, options.maxPollingIntervalMs);
    }
  }

  async function drain(graceMs: number): Promise<void> {
    const grace = new AbortController();
    const allDone = Promise.all([...inFlight].map((d) => d.done));
    const timedOut = delay(graceMs, true, { signal: grace.signal }).catch(() => false);
    const gaveUp = await Promise.race([allDone.then(() => false), timedOut]);
    grace.abort();
    if (!gaveUp) return;
    log(
      `queue ${queue.name}: stopped with ${inFlight.size} invocation(s) still running; their messages reappear when their leases end`,
    );
    for (const delivery of inFlight) delivery.abandon();
  }

  const polling = poll();
  return {
    get inFlight() {
      return inFlight.size;
    },
    async stopPolling() {
      stopping.abort();
      await polling;
    },
    async stop(graceMs = 30000) {
      stopping.abort();
      await polling;
      await drain(graceMs);
    },
  };
}
