import { setTimeout as sleep } from 'node:timers/promises';
import { QueueServiceClient, type QueueClient } from '@azure/storage-queue';
import type { QueueOptions } from '../../../scripts/local-host/host-config';
import {
  DEFAULT_LEASE_MS,
  isTransient,
  poisonQueueNameOf,
  startQueueTrigger,
  type QueueTriggerMetadata,
  type QueueTriggerOptions,
  type RunningQueueTrigger,
} from '../../../scripts/local-host/queue-trigger';
import { enqueue } from '../../../shared/storage/queue';
import { uniqueNamespace, useAzurite } from '../../helpers/storage';

const env = useAzurite();

const OPTIONS: QueueOptions = {
  batchSize: 16,
  newBatchThreshold: 8,
  maxPollingIntervalMs: 400,
  visibilityTimeoutMs: 0,
  maxDequeueCount: 3,
  messageEncoding: 'base64',
};

interface Call {
  payload: unknown;
  metadata: QueueTriggerMetadata;
  at: number;
}

/** A fresh queue and its poison queue under a namespace no other test uses. */
async function freshQueues(): Promise<{ queue: QueueClient; poison: QueueClient }> {
  const service = QueueServiceClient.fromConnectionString(env.azurite().connectionString);
  const name = `${uniqueNamespace()}-work`;
  const queue = service.getQueueClient(name);
  const poison = service.getQueueClient(`${name}-poison`);
  await Promise.all([queue.createIfNotExists(), poison.createIfNotExists()]);
  return { queue, poison };
}

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const messageCount = async (queue: QueueClient) => (await queue.getProperties()).approximateMessagesCount ?? 0;
const peekTexts = async (queue: QueueClient) =>
  (await queue.peekMessages({ numberOfMessages: 32 })).peekedMessageItems.map((m) => m.messageText);

describe('local host queue trigger', () => {
  let triggers: RunningQueueTrigger[];
  let calls: Call[];
  let logs: string[];

  beforeEach(() => {
    triggers = [];
    calls = [];
    logs = [];
  });
  afterEach(() => Promise.all(triggers.map((t) => t.stop(0))));

  /** Starts a trigger that records every invocation before running `body`. */
  function start(
    queues: { queue: QueueClient; poison: QueueClient | undefined },
    body: (call: Call) => Promise<void>,
    extra: Partial<QueueTriggerOptions> = {},
  ): RunningQueueTrigger {
    const trigger = startQueueTrigger({
      queue: queues.queue,
      poisonQueue: queues.poison,
      options: OPTIONS,
      leaseMs: 2000,
      minPollingIntervalMs: 50,
      log: (line) => void logs.push(line),
      invoke: async (payload, metadata) => {
        const call = { payload, metadata, at: Date.now() };
        calls.push(call);
        await body(call);
      },
      ...extra,
    });
    triggers.push(trigger);
    return trigger;
  }

  it('delivers a JSON payload parsed, and plain text as text, once each, then deletes them', async () => {
    const queues = await freshQueues();
    await enqueue(queues.queue, { hello: 'wörld', n: 1 });
    await enqueue(queues.queue, 'just text');
    start(queues, async () => undefined);
    await until(async () => calls.length === 2 && (await messageCount(queues.queue)) === 0, 'both messages processed');
    const json = calls.find((c) => typeof c.payload === 'object');
    expect(json?.payload).toEqual({ hello: 'wörld', n: 1 });
    // the Node library parses trigger metadata as it parses the payload (fromRpcTypedData's tryJsonParse
    // in azure-functions-nodejs-library src/converters/fromRpcTypedData.ts): it carries no raw text
    expect(json?.metadata).toMatchObject({
      dequeueCount: 1,
      queueTrigger: { hello: 'wörld', n: 1 },
      id: expect.any(String),
      popReceipt: expect.any(String),
    });
    // the host sends a DateTimeOffset as JSON (GrpcMessageConversionExtensions.ToRpcDefault in azure-functions-host
    // src/WebJobs.Script.Grpc/MessageExtensions/) and the library JSON-parses it: an ISO string, not a Date
    const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$/;
    expect(json?.metadata).toMatchObject({
      insertionTime: expect.stringMatching(iso),
      expirationTime: expect.stringMatching(iso),
      nextVisibleTime: expect.stringMatching(iso),
    });
    expect(new Date(json!.metadata.insertionTime!).getTime()).toBeGreaterThan(Date.now() - 60000);
    expect(calls.find((c) => typeof c.payload === 'string')?.payload).toBe('just text');
    await sleep(300); // long enough for a wrong redelivery to show
    expect(calls).toHaveLength(2);
  });

  it('runs at most batchSize + newBatchThreshold at once and processes every message', async () => {
    const queues = await freshQueues();
    await Promise.all(Array.from({ length: 10 }, (_, n) => enqueue(queues.queue, { n })));
    let running = 0;
    let maxRunning = 0;
    start(
      queues,
      async () => {
        maxRunning = Math.max(maxRunning, ++running);
        await sleep(300);
        running--;
      },
      { options: { ...OPTIONS, batchSize: 4, newBatchThreshold: 2 } },
    );
    await until(async () => calls.length === 10 && (await messageCount(queues.queue)) === 0, 'all ten processed');
    expect(new Set(calls.map((c) => (c.payload as { n: number }).n)).size).toBe(10);
    expect(maxRunning).toBeGreaterThanOrEqual(4);
    expect(maxRunning).toBeLessThanOrEqual(6);
  });

  it('retries a failing function maxDequeueCount times, then moves the original text to the poison queue', async () => {
    const queues = await freshQueues();
    await enqueue(queues.queue, { fail: true });
    start(queues, async () => {
      throw new Error('always fails');
    });
    await until(async () => (await peekTexts(queues.poison)).length === 1, 'the poison message');
    expect(calls.map((c) => c.metadata.dequeueCount)).toEqual([1, 2, 3]);
    expect(await peekTexts(queues.poison)).toEqual([Buffer.from('{"fail":true}').toString('base64')]);
    expect(await messageCount(queues.queue)).toBe(0);
    expect(logs.some((l) => l.includes('always fails'))).toBe(true);
  });

  it("copies a message to the poison queue with the service's default time-to-live (7 days), not the original's", async () => {
    // QueueProcessor.CopyMessageToPoisonQueueAsync (azure-sdk-for-net
    // sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/Shared/Queues/QueueProcessor.cs) sends
    // message.Body through StorageQueueExtensions.AddMessageAndCreateIfNotExistsAsync
    // (Shared/StorageQueueExtensions.cs), which calls SendMessageAsync without a timeToLive: a task message that
    // never expires gets 7 days in -poison.
    const queues = await freshQueues();
    await enqueue(queues.queue, { fail: true }); // time-to-live -1
    await queues.queue.sendMessage('not base64 !!', { messageTimeToLive: -1 });
    start(queues, async () => {
      throw new Error('always fails');
    });
    await until(async () => (await peekTexts(queues.poison)).length === 2, 'both poison messages');
    const poisoned = (await queues.poison.peekMessages({ numberOfMessages: 32 })).peekedMessageItems;
    for (const m of poisoned) expect(m.expiresOn.getTime() - m.insertedOn.getTime()).toBe(7 * 24 * 60 * 60 * 1000);
  });

  it('keeps a failed message invisible for visibilityTimeout before the next delivery', async () => {
    const queues = await freshQueues();
    await enqueue(queues.queue, 'retry me');
    let firstFailedAt = 0;
    start(
      queues,
      async (call) => {
        if (call.metadata.dequeueCount === 1) {
          firstFailedAt = Date.now();
          throw new Error('first delivery fails');
        }
      },
      { options: { ...OPTIONS, visibilityTimeoutMs: 1500 } },
    );
    await until(() => calls.length === 2, 'the second delivery');
    expect(calls[1].at - firstFailedAt).toBeGreaterThanOrEqual(1400);
    await until(async () => (await messageCount(queues.queue)) === 0, 'the retried message deleted');
  });

  it('polls an idle queue less and less often, up to maxPollingInterval', async () => {
    const queues = await freshQueues();
    const polls: number[] = [];
    const receive = queues.queue.receiveMessages.bind(queues.queue);
    queues.queue.receiveMessages = (options) => {
      polls.push(Date.now());
      return receive(options);
    };
    start(queues, async () => undefined);
    await sleep(2000); // an observation window: the number of polls in it is the result
    const gaps = polls.slice(1).map((at, i) => at - polls[i]);
    expect(polls.length).toBeGreaterThanOrEqual(4);
    expect(polls.length).toBeLessThanOrEqual(12);
    expect(gaps[0]).toBeLessThan(200);
    expect(gaps[gaps.length - 1]).toBeGreaterThanOrEqual(350);
    expect(gaps[gaps.length - 1]).toBeLessThan(800);
  });

  it('moves a message that is not base64 straight to the poison queue without invoking', async () => {
    const queues = await freshQueues();
    await queues.queue.sendMessage('not base64 !!');
    start(queues, async () => undefined);
    await until(async () => (await peekTexts(queues.poison)).length === 1, 'the poison message');
    expect(await peekTexts(queues.poison)).toEqual(['not base64 !!']);
    expect(await messageCount(queues.queue)).toBe(0);
    expect(calls).toHaveLength(0);
    expect(logs.some((l) => /not valid base64/.test(l))).toBe(true);
  });

  it('hands a binary trigger (dataType binary) the exact bytes, so 1e999 stays 1e999', async () => {
    const queues = await freshQueues();
    await enqueue(queues.queue, '1e999');
    start(queues, async () => undefined, { dataType: 'binary' });
    await until(() => calls.length === 1, 'the delivery');
    expect(Buffer.isBuffer(calls[0].payload)).toBe(true);
    expect((calls[0].payload as Buffer).toString('utf8')).toBe('1e999');
  });

  it('poisons a message delivered more than maxDequeueCount times without invoking it', async () => {
    // QueueProcessor.BeginProcessingMessageAsync (azure-sdk-for-net
    // sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/Shared/Queues/QueueProcessor.cs)
    const queues = await freshQueues();
    await enqueue(queues.queue, 'crashed every time');
    for (let i = 0; i < OPTIONS.maxDequeueCount; i++) {
      // a host that died mid-run: received, never deleted; its lease is ended at once instead of waited out
      const [message] = (await queues.queue.receiveMessages({ visibilityTimeout: 30 })).receivedMessageItems;
      expect(message.dequeueCount).toBe(i + 1);
      await queues.queue.updateMessage(message.messageId, message.popReceipt, undefined, 0);
    }
    start(queues, async () => undefined);
    await until(async () => (await peekTexts(queues.poison)).length === 1, 'the poison message');
    expect(calls).toHaveLength(0);
    expect(await messageCount(queues.queue)).toBe(0);
  }, 15000);

  describe('a queue that is itself a poison queue has no poison queue', () => {
    // QueueListenerFactory.CreatePoisonQueueReference (azure-sdk-for-net
    // sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Queues/src/Listeners/QueueListenerFactory.cs)
    // returns null for a name ending in "-poison"; QueueProcessor then leaves a failed or undecodable
    // message hidden until its lease ends (CompleteProcessingMessageAsync, HandlePoisonMessageAsync).
    async function poisonQueueOnly(): Promise<{ queue: QueueClient; poison: QueueClient }> {
      const service = QueueServiceClient.fromConnectionString(env.azurite().connectionString);
      const name = `${uniqueNamespace()}-work-poison`;
      const queue = service.getQueueClient(name);
      await queue.createIfNotExists();
      return { queue, poison: service.getQueueClient(`${name}-poison`) };
    }

    it('names no poison queue for a -poison queue', () => {
      expect(poisonQueueNameOf('tasks-light')).toBe('tasks-light-poison');
      expect(poisonQueueNameOf('tasks-light-poison')).toBeUndefined();
    });

    it('leaves a message that is not base64 where it is, hidden until its lease ends, and invokes nothing', async () => {
      const queues = await poisonQueueOnly();
      await queues.queue.sendMessage('not base64 !!');
      const trigger = start({ queue: queues.queue, poison: undefined }, async () => undefined);
      await until(async () => (await peekTexts(queues.queue)).length === 0, 'the message received');
      expect(await messageCount(queues.queue)).toBe(1);
      // Stop receiving so the message, once its lease ends, stays visible for the test to see (a trigger
      // still polling would take it again at once on a busy machine and the peek could miss it).
      await trigger.stopPolling();
      await until(async () => (await peekTexts(queues.queue)).length === 1, 'the message visible again', 5000);
      const [again] = (await queues.queue.peekMessages()).peekedMessageItems;
      expect(again.dequeueCount).toBe(1); // received once, never deleted, never moved
      expect(calls).toHaveLength(0);
      expect(await queues.poison.exists()).toBe(false);
    });

    it('leaves a failed message hidden until its lease ends instead of retrying it at once', async () => {
      const queues = await poisonQueueOnly();
      await enqueue(queues.queue, 'fails');
      start(
        { queue: queues.queue, poison: undefined },
        async () => {
          throw new Error('poison function fails');
        },
        { options: { ...OPTIONS, visibilityTimeoutMs: 0 } },
      );
      await until(() => calls.length === 2, 'the second delivery', 8000);
      expect(calls[1].at - calls[0].at).toBeGreaterThanOrEqual(1900); // the 2 s lease, not visibilityTimeout 0
      expect(await queues.poison.exists()).toBe(false);
    }, 15000);
  });

  it('stop() waits for the invocation in flight, completes its message and starts no other', async () => {
    const queues = await freshQueues();
    await enqueue(queues.queue, { n: 1 });
    await enqueue(queues.queue, { n: 2 });
    let finished = 0;
    const trigger = start(
      queues,
      async () => {
        await sleep(800);
        finished++;
      },
      { options: { ...OPTIONS, batchSize: 1, newBatchThreshold: 0 } },
    );
    await until(() => calls.length === 1, 'the first invocation');
    await trigger.stop();
    expect(finished).toBe(1);
    expect(trigger.inFlight).toBe(0);
    await sleep(500); // no further invocation may start after stop
    expect(calls).toHaveLength(1);
    expect(await messageCount(queues.queue)).toBe(1);
  });

  it('stop() gives up after graceMs and leaves the unfinished message for a later delivery', async () => {
    const queues = await freshQueues();
    await enqueue(queues.queue, 'slow');
    let finish = () => undefined as void;
    const trigger = start(queues, () => new Promise<void>((resolve) => (finish = resolve)));
    await until(() => calls.length === 1, 'the invocation');
    const stoppingAt = Date.now();
    await trigger.stop(200);
    expect(Date.now() - stoppingAt).toBeLessThan(1000);
    expect(trigger.inFlight).toBe(1);
    finish();
    await until(() => trigger.inFlight === 0, 'the abandoned invocation to end');
    expect(await messageCount(queues.queue)).toBe(1); // not deleted: it reappears when its lease ends
  });

  it('renews the lease so an invocation longer than leaseMs is not delivered again meanwhile', async () => {
    const queues = await freshQueues();
    await enqueue(queues.queue, 'long task');
    start(queues, () => sleep(4500).then(() => undefined), { options: { ...OPTIONS, maxPollingIntervalMs: 200 } });
    await until(
      async () => calls.length >= 1 && (await messageCount(queues.queue)) === 0,
      'the long task completed',
      15000,
    );
    expect(calls).toHaveLength(1);
    expect(calls[0].metadata.dequeueCount).toBe(1);
  });

  // QueueListener (azure-sdk-for-net sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Queues/src/Listeners/
  // QueueListener.cs): `_visibilityTimeout = TimeSpan.FromMinutes(10)` for every received message, renewed when
  // halfway to expiring (CreateUpdateMessageVisibilityTimer)
  it('hides a received message for 10 minutes by default, as the real listener', async () => {
    const queues = await freshQueues();
    await enqueue(queues.queue, 'leased');
    const receive = jest.spyOn(queues.queue, 'receiveMessages');
    const trigger = startQueueTrigger({
      queue: queues.queue,
      poisonQueue: queues.poison,
      options: OPTIONS,
      minPollingIntervalMs: 50,
      invoke: async () => undefined,
    });
    triggers.push(trigger);
    await until(async () => (await messageCount(queues.queue)) === 0, 'the message processed');
    expect(receive.mock.calls[0][0]).toMatchObject({ visibilityTimeout: 600 });
    expect(DEFAULT_LEASE_MS).toBe(600_000);
  });

  // QueueListener.ExecuteAsync rethrows a RequestFailedException that is not 404 QueueNotFound, 409 being
  // deleted/disabled or 5xx; WebScriptHostExceptionHandler.OnUnhandledExceptionAsync (azure-functions-host
  // src/WebJobs.Script.WebHost/WebScriptHostExceptionHandler.cs) then logs "Host is shutting down" and stops it
  it('stops polling and reports a 403 (a wrong key) instead of backing off silently', async () => {
    const queues = await freshQueues();
    const wrongKey = env
      .azurite()
      .connectionString.replace(/AccountKey=[^;]+/, `AccountKey=${Buffer.alloc(64, 1).toString('base64')}`);
    const queue = QueueServiceClient.fromConnectionString(wrongKey).getQueueClient(queues.queue.name);
    const fatal: Error[] = [];
    const receive = jest.spyOn(queue, 'receiveMessages');
    start({ queue, poison: undefined }, async () => undefined, { onFatal: (e) => void fatal.push(e) });
    await until(() => fatal.length === 1, 'the fatal error');
    expect(fatal[0].message).toContain(queues.queue.name);
    expect(fatal[0].message).toMatch(/403 AuthenticationFailed/);
    await sleep(300);
    expect(receive).toHaveBeenCalledTimes(1); // no back-off and retry
  });

  it('keeps backing off from transient errors (5xx, 429, no answer) and from a missing queue', async () => {
    for (const failure of [{ statusCode: 503 }, { statusCode: 429 }, {}, { statusCode: 404, code: 'QueueNotFound' }])
      expect(isTransient(Object.assign(new Error('x'), failure))).toBe(true);
    for (const failure of [{ statusCode: 403, code: 'AuthenticationFailed' }, { statusCode: 400 }, { statusCode: 404 }])
      expect(isTransient(Object.assign(new Error('x'), failure))).toBe(false);
    const queues = await freshQueues();
    const fatal: Error[] = [];
    const receive = jest
      .spyOn(queues.queue, 'receiveMessages')
      .mockRejectedValue(Object.assign(new Error('Server busy'), { statusCode: 503 }));
    start(queues, async () => undefined, { onFatal: (e) => void fatal.push(e) });
    await until(() => receive.mock.calls.length >= 3, 'three polls');
    expect(fatal).toEqual([]);
    expect(logs.some((l) => l.includes('backing off: Server busy'))).toBe(true);
  });
});
