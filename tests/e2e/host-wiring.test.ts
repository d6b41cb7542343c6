/** The local host runs each trigger kind it finds in the function files, wired to host.json. */
import path from 'node:path';
import { QueueServiceClient } from '@azure/storage-queue';
import { enqueue, decodeMessageText } from '../../shared/storage/queue';
import { startLocalHost, type RunningLocalHost } from '../../scripts/local-host/host';
import { startAzurite, type RunningAzurite } from '../../scripts/azurite';
import { uniqueNamespace } from '../helpers/storage';
import { waitFor } from '../helpers/host';

jest.mock('@azure/functions-core', () => jest.requireActual('../../scripts/local-host/functions-core').functionsCore, {
  virtual: true,
});

const queueName = `${uniqueNamespace()}-fixture`;
let azurite: RunningAzurite;
let host: RunningLocalHost;
let calls: { trigger: string; payload: unknown; metadata?: Record<string, unknown> }[];

beforeAll(async () => {
  azurite = await startAzurite();
  process.env.AzureWebJobsStorage = azurite.connectionString;
  process.env.FIXTURE_QUEUE = queueName;
  const fixture = path.join(__dirname, 'fixtures/functions.ts');
  host = await startLocalHost({
    root: path.join(__dirname, 'fixtures'),
    port: 0,
    files: [fixture],
    log: () => undefined,
    queueLeaseMs: 2000,
  });
  calls = jest.requireActual<{ calls: typeof calls }>(fixture).calls;
}, 30000);

afterAll(async () => {
  await host?.stop(2000);
  await azurite?.stop();
});

it('serves HTTP routes under the host.json route prefix with params, query and bodies', async () => {
  const get = await fetch(`${host.url}/hello/ada?q=1`);
  expect(await get.json()).toEqual({ name: 'ada', q: '1', body: null });
  const post = await fetch(`${host.url}/hello/bob`, { method: 'POST', body: Buffer.alloc(1000, 7) });
  expect(await post.json()).toEqual({ name: 'bob', q: null, body: 1000 });
  expect(host.url).toMatch(/\/fixture$/);
});

it('runs queue triggers with decoded payloads and dequeue counts, and poisons after maxDequeueCount', async () => {
  const service = QueueServiceClient.fromConnectionString(azurite.connectionString);
  await enqueue(service.getQueueClient(queueName), { hello: 'queue' });
  const delivered = await waitFor('the queue message', async () =>
    calls.find((c) => c.trigger === 'queue' && (c.payload as { hello?: string }).hello === 'queue'),
  );
  expect(delivered.metadata).toMatchObject({ dequeueCount: 1, id: expect.any(String) });

  await enqueue(service.getQueueClient(queueName), { fail: true });
  const poisoned = await waitFor(
    'the poison message',
    async () => (await service.getQueueClient(`${queueName}-poison`).receiveMessages()).receivedMessageItems[0],
    30000,
  );
  expect(JSON.parse(decodeMessageText(poisoned.messageText))).toEqual({ fail: true });
  const attempts = calls.filter((c) => (c.payload as { fail?: boolean }).fail).map((c) => c.metadata?.dequeueCount);
  expect(host.config.queues.maxDequeueCount).toBe(3);
  expect(attempts).toEqual([1, 2, 3]);
}, 40000);

it('fires timer triggers on their NCRONTAB schedule', async () => {
  const ticks = await waitFor(
    'two timer ticks',
    async () => {
      const t = calls.filter((c) => c.trigger === 'timer');
      return t.length >= 2 ? t : undefined;
    },
    5000,
  );
  expect(ticks[0].payload).toMatchObject({ isPastDue: false, schedule: { adjustForDST: true } });
});
