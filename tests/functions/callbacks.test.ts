/**
 * Completion callbacks on Azurite, with a real HTTP receiver on a free local port: the callbacks queue is
 * drained as the host would drain it (receive, run the handler, delete), honouring each message's
 * visibility delay, so back-off and checks run for real; nothing waits longer than a poll.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadSettings, type Settings } from '../../shared/config';
import type { Resolver } from '../../shared/callback-url';
import { jobRoutes } from '../../shared/http/jobs';
import type { Storage } from '../../shared/storage/clients';
import { decodeMessageText } from '../../shared/storage/queue';
import { verifySignature } from '../../shared/signature';
import {
  getCallback,
  handleCallbackPoison,
  processCallbackMessage,
  registerCallback,
  type CallbackOutcome,
} from '../../shared/tasks/callbacks';
import { createJob } from '../../shared/tasks/jobs';
import { normalizeTaskSpec } from '../../shared/imaging/spec';
import { TaskStore } from '../../shared/tasks/store';
import { processTaskMessage } from '../../shared/tasks/worker';
import { waitFor } from '../helpers/host';
import { call, multipart } from '../helpers/http';
import { photo } from '../helpers/images';
import { useAzurite } from '../helpers/storage';
import { workerDeps } from '../helpers/worker';

const env = useAzurite();
const SECRET = 's'.repeat(48);

const settingsWith = (overrides: Record<string, string>): Settings =>
  loadSettings({
    CALLBACK_SECRET: SECRET,
    CALLBACK_ALLOW_PRIVATE: 'true',
    CALLBACK_MAX_ATTEMPTS: '3',
    CALLBACK_TIMEOUT_MS: '500',
    CALLBACK_RETRY_BASE_SECONDS: '1',
    ...overrides,
  });

type Behaviour = 'fail' | 'hang' | 'ok';

interface Delivery {
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly answered: Behaviour;
}

/** A receiver that answers each request as the script says (the last entry repeats): 500, never, or 204. */
async function receiver(script: Behaviour[]) {
  const deliveries: Delivery[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answered = script[Math.min(deliveries.length, script.length - 1)];
      deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), answered });
      if (answered === 'fail') res.writeHead(500, { 'content-type': 'text/plain' }).end('receiver is down');
      else if (answered === 'ok') res.writeHead(204).end();
      // 'hang': no answer; the caller's timeout ends it
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/done?src=test`,
    port,
    deliveries,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Runs every visible callbacks message through the handler, as the host would, until `until` holds. */
async function drainCallbacks(
  storage: Storage,
  settings: Settings,
  until: () => Promise<boolean>,
  extra: { resolve?: Resolver } = {},
): Promise<CallbackOutcome[]> {
  const outcomes: CallbackOutcome[] = [];
  await waitFor(
    'the callback to settle',
    async () => {
      const queue = storage.callbackQueue();
      const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 16, visibilityTimeout: 60 });
      for (const m of receivedMessageItems) {
        outcomes.push(await processCallbackMessage(decodeMessageText(m.messageText), { storage, settings, ...extra }));
        await queue.deleteMessage(m.messageId, m.popReceipt);
      }
      return (await until()) ? true : undefined;
    },
    30000,
    100,
  );
  return outcomes;
}

/** Runs the job's task messages through the light worker. */
async function runTasks(storage: Storage): Promise<void> {
  const queue = storage.queue('light');
  const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32 });
  for (const m of receivedMessageItems) {
    await processTaskMessage(decodeMessageText(m.messageText), workerDeps(storage));
    await queue.deleteMessage(m.messageId, m.popReceipt);
  }
}

async function withImages(storage: Storage, names: string[]) {
  const data = await photo(64, 48);
  for (const name of names) await storage.images.getBlockBlobClient(name).uploadData(data);
}

const stateOf = async (storage: Storage, jobId: string) => (await getCallback(storage, jobId))?.state;

/** A job whose tasks have all failed already (final), with a callback registered to `url`. */
async function finalJobWithCallback(storage: Storage, url: string): Promise<string> {
  const jobId = randomUUID();
  await registerCallback(storage, jobId, url, 'http://localhost:7071/api');
  const spec = normalizeTaskSpec({ filters: ['grayscale'] }, loadSettings({}));
  const job = await createJob(storage, ['missing.png'], spec, new Date(), jobId);
  const store = new TaskStore(storage.tasks);
  for (const t of job.tasks)
    await store.fail(t.task_id, { type: 'job_failure', reason: 'test', error: 'made to fail' });
  return jobId;
}

describe('completion callbacks', () => {
  it('checks until the job is final, then delivers one signed event through a 500 and a timeout', async () => {
    const storage = await env.storage();
    const settings = settingsWith({});
    const hook = await receiver(['fail', 'hang', 'ok']);
    try {
      await withImages(storage, ['a.png', 'b.png']);
      const routes = jobRoutes(() => storage, settings);
      const submitted = await call(routes.submitJob, {
        method: 'POST',
        path: '/api/jobs',
        body: { images: ['a.png', 'b.png'], filters: ['grayscale'], callback_url: hook.url },
      });
      expect(submitted.status).toBe(202);
      expect(submitted.json.callback).toEqual({ url: hook.url, state: 'pending' });
      const jobId = submitted.json.job_id as string;

      // the job is not final yet: the check goes back on the queue
      const early = await drainCallbacks(storage, settings, async () => true);
      await waitFor('the first check', async () => {
        early.push(...(await drainCallbacks(storage, settings, async () => true)));
        return early.includes('waiting') ? true : undefined;
      });
      expect(hook.deliveries).toHaveLength(0);
      expect((await getCallback(storage, jobId))?.checks).toBeGreaterThanOrEqual(1);

      await runTasks(storage);
      const outcomes = await drainCallbacks(
        storage,
        settings,
        async () => (await stateOf(storage, jobId)) === 'delivered',
      );
      expect(outcomes.filter((o) => o === 'retrying')).toHaveLength(2);
      expect(outcomes.filter((o) => o === 'delivered')).toHaveLength(1);

      expect(hook.deliveries.map((d) => d.answered)).toEqual(['fail', 'hang', 'ok']);
      const [first] = hook.deliveries;
      const event = JSON.parse(first.body);
      expect(event).toMatchObject({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        type: 'job.succeeded',
        job_id: jobId,
        status: 'succeeded',
        total: 2,
        counts: { queued: 0, processing: 0, succeeded: 2, failed: 0 },
        created_at: expect.any(String),
        completed_at: expect.any(String),
        status_url: `http://localhost:7071/api/jobs/${jobId}`,
      });
      expect(event.tasks).toEqual([
        {
          task_id: `${jobId}_0000`,
          status: 'succeeded',
          image: 'a.png',
          result_url: expect.stringMatching(/\/result$/),
        },
        {
          task_id: `${jobId}_0001`,
          status: 'succeeded',
          image: 'b.png',
          result_url: expect.stringMatching(/\/result$/),
        },
      ]);
      for (const [i, d] of hook.deliveries.entries()) {
        // the same event, byte for byte, on every attempt; signed afresh each time
        expect(d.body).toBe(first.body);
        expect(d.headers).toMatchObject({
          'content-type': 'application/json',
          'x-event-id': event.id,
          'x-event-type': 'job.succeeded',
          'x-delivery-attempt': String(i + 1),
        });
        expect(verifySignature(SECRET, d.headers['x-signature'] as string, d.body)).toBe(true);
        expect(verifySignature('x'.repeat(48), d.headers['x-signature'] as string, d.body)).toBe(false);
      }

      const job = await call(routes.getJob, { path: `/api/jobs/${jobId}`, params: { job_id: jobId } });
      expect(job.json.callback).toEqual({
        url: hook.url,
        state: 'delivered',
        event_id: event.id,
        attempts: 3,
        max_attempts: 3,
        last_status: 204,
        last_error: null,
        last_attempt_at: expect.any(String),
        next_attempt_at: null,
        delivered_at: expect.any(String),
      });
      // nothing more is sent: the queue holds no further message for it
      expect((await storage.callbackQueue().getProperties()).approximateMessagesCount).toBe(0);
      expect(hook.deliveries).toHaveLength(3);
    } finally {
      await hook.close();
    }
  }, 60000);

  it('records each failure and gives up after CALLBACK_MAX_ATTEMPTS: the registration is dead, on the job', async () => {
    const storage = await env.storage();
    const settings = settingsWith({ CALLBACK_MAX_ATTEMPTS: '3' });
    const hook = await receiver(['fail']);
    try {
      const jobId = await finalJobWithCallback(storage, hook.url);
      const outcomes = await drainCallbacks(storage, settings, async () => (await stateOf(storage, jobId)) === 'dead');
      expect(outcomes).toEqual(['retrying', 'retrying', 'dead']);
      expect(hook.deliveries).toHaveLength(3);
      expect(JSON.parse(hook.deliveries[0].body)).toMatchObject({
        type: 'job.failed',
        tasks: [{ status: 'failed', failure_type: 'job_failure', failure_reason: 'test', error: 'made to fail' }],
      });
      const job = await call(jobRoutes(() => storage, settings).getJob, {
        path: `/api/jobs/${jobId}`,
        params: { job_id: jobId },
      });
      expect(job.json.status).toBe('failed');
      expect(job.json.callback).toMatchObject({
        state: 'dead',
        attempts: 3,
        last_status: 500,
        last_error: 'HTTP 500: receiver is down',
        delivered_at: null,
        next_attempt_at: null,
      });
    } finally {
      await hook.close();
    }
  }, 60000);

  it('sends one event when copies of a message run at once (the step is claimed under the ETag)', async () => {
    const storage = await env.storage();
    const settings = settingsWith({});
    const hook = await receiver(['ok']);
    try {
      await finalJobWithCallback(storage, hook.url);
      const text = await waitFor('the first check message', async () => {
        const { receivedMessageItems } = await storage.callbackQueue().receiveMessages();
        return receivedMessageItems[0] && decodeMessageText(receivedMessageItems[0].messageText);
      });
      const outcomes = await Promise.all([1, 2, 3, 4].map(() => processCallbackMessage(text, { storage, settings })));
      expect(outcomes.filter((o) => o === 'delivered')).toHaveLength(1);
      expect(
        outcomes
          .filter((o) => o !== 'delivered')
          .every((o) => ['lost_race', 'deferred', 'stale', 'finished'].includes(o)),
      ).toBe(true);
      // a copy delivered after the event was sent finds it finished
      expect(await processCallbackMessage(text, { storage, settings })).toBe('finished');
      expect(hook.deliveries).toHaveLength(1);
    } finally {
      await hook.close();
    }
  }, 30000);

  it('puts back a copy of a step another invocation runs, and takes over one whose invocation died', async () => {
    const storage = await env.storage();
    const settings = settingsWith({ CALLBACK_TIMEOUT_MS: '500' });
    const hook = await receiver(['ok']);
    try {
      const jobId = await finalJobWithCallback(storage, hook.url);
      const text = JSON.stringify({ v: 1, job_id: jobId, seq: 0 });
      const claim = async (ageMs: number) => {
        const row = await storage.callbacks.getEntity(jobId, 'callback');
        await storage.callbacks.updateEntity(
          {
            partitionKey: jobId,
            rowKey: 'callback',
            seq: 1,
            step_done: false,
            step_at: new Date(Date.now() - ageMs).toISOString(),
          },
          'Merge',
          { etag: row.etag },
        );
      };
      await claim(1000); // step 0 claimed a second ago, still running
      expect(await processCallbackMessage(text, { storage, settings })).toBe('deferred');
      expect(hook.deliveries).toHaveLength(0);
      await claim(10 * 60 * 1000); // claimed ten minutes ago and never recorded: its invocation died
      expect(await processCallbackMessage(text, { storage, settings })).toBe('delivered');
      expect(hook.deliveries).toHaveLength(1);
      expect(await stateOf(storage, jobId)).toBe('delivered');
    } finally {
      await hook.close();
    }
  }, 30000);

  it('checks the address again at delivery: a name that now resolves to loopback is not connected to', async () => {
    const storage = await env.storage();
    const settings = settingsWith({ CALLBACK_ALLOW_PRIVATE: 'false', CALLBACK_MAX_ATTEMPTS: '1' });
    const hook = await receiver(['ok']);
    try {
      // accepted at submit: it resolved to a public address then
      const atSubmit: Resolver = async () => [{ address: '93.184.216.34', family: 4 }];
      const url = `https://hooks.example.com:${hook.port}/done`;
      await withImages(storage, ['c.png']);
      const submitted = await call(jobRoutes(() => storage, settings, { resolve: atSubmit }).submitJob, {
        method: 'POST',
        path: '/api/jobs',
        body: { images: ['c.png'], filters: ['grayscale'], callback_url: url },
      });
      expect(submitted.status).toBe(202);
      const jobId = submitted.json.job_id as string;
      await runTasks(storage);
      // rebound: the same name now answers the receiver's loopback address
      const atDelivery: Resolver = async () => [{ address: '127.0.0.1', family: 4 }];
      await drainCallbacks(storage, settings, async () => (await stateOf(storage, jobId)) === 'dead', {
        resolve: atDelivery,
      });
      expect(hook.deliveries).toHaveLength(0);
      expect((await getCallback(storage, jobId))?.last_error).toMatch(
        /callback refused: host hooks\.example\.com resolves to 127\.0\.0\.1, loopback/,
      );
    } finally {
      await hook.close();
    }
  }, 60000);

  it('marks the registration dead when the host gives up on its message (poison), and never throws', async () => {
    const storage = await env.storage();
    const jobId = await finalJobWithCallback(storage, 'https://hooks.example.com/done');
    await handleCallbackPoison(JSON.stringify({ v: 1, job_id: jobId, seq: 0 }), { storage });
    expect(await getCallback(storage, jobId)).toMatchObject({
      state: 'dead',
      last_error: expect.stringMatching(/failed every delivery the host made/),
    });
    await expect(handleCallbackPoison('not json', { storage })).resolves.toBeUndefined();
  });

  it('drops a garbled message with a log line instead of failing', async () => {
    const storage = await env.storage();
    const lines: string[] = [];
    const deps = { storage, settings: settingsWith({}), log: (l: string) => lines.push(l) };
    expect(await processCallbackMessage('{"v":1,"job_id":"x"}', deps)).toBe('invalid_message');
    expect(await processCallbackMessage(Buffer.from('\u0000'), deps)).toBe('invalid_message');
    expect(lines[0]).toMatch(/expected \{"v":1,"job_id":"<uuid>","seq":<n>\}/);
    const unknown = JSON.stringify({ v: 1, job_id: randomUUID(), seq: 0 });
    expect(await processCallbackMessage(unknown, deps)).toBe('unknown_job');
  });
});

describe('POST /api/jobs with callback_url', () => {
  const publicAndPrivate: Resolver = async (host) =>
    ({
      'hooks.example.com': [{ address: '93.184.216.34', family: 4 }],
      'internal.example.com': [{ address: '10.1.2.3', family: 4 }],
      'rebind.example.com': [
        { address: '93.184.216.34', family: 4 },
        { address: '169.254.169.254', family: 4 },
      ],
    })[host] ?? [];

  async function nothingStored(storage: Storage) {
    const tasks = [];
    for await (const t of storage.tasks.listEntities()) tasks.push(t);
    const callbacks = [];
    for await (const c of storage.callbacks.listEntities()) callbacks.push(c);
    const blobs = [];
    for await (const b of storage.images.listBlobsFlat()) blobs.push(b.name);
    return { tasks: tasks.length, callbacks: callbacks.length, blobs };
  }

  it.each([
    ['https://internal.example.com/hook', /resolves to 10\.1\.2\.3, private/],
    ['https://rebind.example.com/hook', /resolves to 169\.254\.169\.254, link-local, cloud metadata/],
    ['https://169.254.169.254/latest/meta-data/', /169\.254\.169\.254, link-local/],
    ['https://[::ffff:127.0.0.1]:8080/', /loopback .*as IPv6/],
    ['http://hooks.example.com/hook', /http only with CALLBACK_ALLOW_PRIVATE=true/],
    ['https://u:p@hooks.example.com/hook', /without user name or password/],
  ])('refuses %s with 400 problem+json, and stores nothing (JSON form)', async (url, received) => {
    const storage = await env.storage();
    await withImages(storage, ['a.png']);
    const routes = jobRoutes(() => storage, settingsWith({ CALLBACK_ALLOW_PRIVATE: 'false' }), {
      resolve: publicAndPrivate,
    });
    const res = await call(routes.submitJob, {
      method: 'POST',
      path: '/api/jobs',
      body: { images: ['a.png'], filters: ['grayscale'], callback_url: url },
    });
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json).toMatchObject({
      type: 'urn:image-pipeline:problem:validation_failed',
      errors: [{ field: 'callback_url', message: expect.stringMatching(received) }],
    });
    expect(await nothingStored(storage)).toEqual({ tasks: 0, callbacks: 0, blobs: ['a.png'] });
  });

  it('refuses a private callback_url in the raw and multipart forms before storing the upload', async () => {
    const storage = await env.storage();
    const routes = jobRoutes(() => storage, settingsWith({ CALLBACK_ALLOW_PRIVATE: 'false' }), {
      resolve: publicAndPrivate,
    });
    const image = await photo(32, 24);
    const raw = await call(routes.submitJob, {
      method: 'POST',
      path: `/api/jobs?filters=grayscale&callback_url=${encodeURIComponent('https://internal.example.com/x')}`,
      headers: { 'content-type': 'image/png' },
      body: image,
    });
    expect(raw.status).toBe(400);
    expect(raw.json.errors[0]).toMatchObject({ field: 'callback_url' });
    const form = multipart([{ name: 'p.png', data: image, type: 'image/png' }], {
      filters: 'grayscale',
      callback_url: 'https://127.0.0.1/x',
    });
    const parts = await call(routes.submitJob, {
      method: 'POST',
      path: '/api/jobs',
      headers: { 'content-type': form.contentType },
      body: form.body,
    });
    expect(parts.status).toBe(400);
    expect(parts.json.errors[0]).toMatchObject({ field: 'callback_url', received: expect.stringMatching(/loopback/) });
    expect(await nothingStored(storage)).toEqual({ tasks: 0, callbacks: 0, blobs: [] });
  });

  it('registers a callback from the raw and multipart forms too', async () => {
    const storage = await env.storage();
    const routes = jobRoutes(() => storage, settingsWith({ CALLBACK_ALLOW_PRIVATE: 'false' }), {
      resolve: publicAndPrivate,
    });
    const image = await photo(32, 24);
    const url = 'https://hooks.example.com/done';
    const raw = await call(routes.submitJob, {
      method: 'POST',
      path: `/api/jobs?filters=grayscale&callback_url=${encodeURIComponent(url)}`,
      headers: { 'content-type': 'image/png' },
      body: image,
    });
    expect(raw.status).toBe(202);
    const form = multipart([{ name: 'p.png', data: image, type: 'image/png' }], {
      filters: 'grayscale',
      callback_url: url,
    });
    const parts = await call(routes.submitJob, {
      method: 'POST',
      path: '/api/jobs',
      headers: { 'content-type': form.contentType },
      body: form.body,
    });
    expect(parts.status).toBe(202);
    for (const res of [raw, parts])
      expect(await getCallback(storage, res.json.job_id)).toMatchObject({ url, state: 'pending' });
  });

  it('refuses callback_url with 501 when no CALLBACK_SECRET is set (events are never sent unsigned)', async () => {
    const storage = await env.storage();
    await withImages(storage, ['a.png']);
    const routes = jobRoutes(() => storage, settingsWith({ CALLBACK_SECRET: '' }), { resolve: publicAndPrivate });
    const res = await call(routes.submitJob, {
      method: 'POST',
      path: '/api/jobs',
      body: { images: ['a.png'], filters: ['grayscale'], callback_url: 'https://hooks.example.com/done' },
    });
    expect(res.status).toBe(501);
    expect(res.json).toMatchObject({
      type: 'urn:image-pipeline:problem:callbacks_not_configured',
      detail: expect.stringMatching(/CALLBACK_SECRET/),
    });
    expect(await nothingStored(storage)).toEqual({ tasks: 0, callbacks: 0, blobs: ['a.png'] });
  });

  it('costs a job without callback_url nothing: no registration, no message, no callback on the job', async () => {
    const storage = await env.storage();
    await withImages(storage, ['a.png']);
    const routes = jobRoutes(() => storage, settingsWith({}));
    const res = await call(routes.submitJob, {
      method: 'POST',
      path: '/api/jobs',
      body: { images: ['a.png'], filters: ['grayscale'] },
    });
    expect(res.status).toBe(202);
    expect(res.json.callback).toBeUndefined();
    expect((await storage.callbackQueue().getProperties()).approximateMessagesCount).toBe(0);
    const job = await call(routes.getJob, {
      path: `/api/jobs/${res.json.job_id}`,
      params: { job_id: res.json.job_id },
    });
    expect(job.json.callback).toBeUndefined();
  });
});
