/**
 * Completion callbacks through the running app: the built local host runs every app.storageQueue
 * registration (deliverCallback on the callbacks queue included) beside the workers, and a receiver on a
 * free local port (CALLBACK_ALLOW_PRIVATE=true) fails once, times out once, then takes the event. Needs
 * the build (npm test builds first).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startAzurite, type RunningAzurite } from '../../scripts/azurite';
import { Storage } from '../../shared/storage/clients';
import { resourceNames } from '../../shared/storage/names';
import { verifySignature } from '../../shared/signature';
import { getJson, HOST_MAIN, spawnApp, waitFor, type HostProcess } from '../helpers/host';
import { photo } from '../helpers/images';
import { uniqueNamespace } from '../helpers/storage';

const SECRET = 'e2e-callback-secret-0123456789abcdef';

let azurite: RunningAzurite;
let host: HostProcess | undefined;
let server: http.Server | undefined;

beforeAll(async () => {
  azurite = await startAzurite();
}, 30000);
afterAll(async () => {
  if (host && host.child.exitCode === null) {
    host.child.kill('SIGTERM');
    await host.exited;
  }
  server?.closeAllConnections();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  await azurite?.stop();
});

interface Received {
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

describe('completion callbacks in the running app', () => {
  it('POSTs one signed event when the job ends, through a 500 and a timeout, and shows it on the job', async () => {
    const received: Received[] = [];
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        if (received.length === 1) res.writeHead(500).end('not now');
        else if (received.length === 3) res.writeHead(200).end('ok');
        // the second request gets no answer: CALLBACK_TIMEOUT_MS ends it
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;

    const ns = uniqueNamespace();
    const storage = new Storage(azurite.connectionString, resourceNames(ns));
    await storage.ensureResources();
    await storage.images.getBlockBlobClient('cb.png').uploadData(await photo(64, 48));
    host = await spawnApp(
      HOST_MAIN,
      {
        AzureWebJobsStorage: azurite.connectionString,
        STORAGE_NAMESPACE: ns,
        CALLBACK_SECRET: SECRET,
        CALLBACK_ALLOW_PRIVATE: 'true',
        CALLBACK_TIMEOUT_MS: '500',
        CALLBACK_RETRY_BASE_SECONDS: '1',
        CALLBACK_MAX_ATTEMPTS: '4',
      },
      /Host listening on/,
    );
    expect(host.output()).toMatch(/deliverCallback/);

    const res = await fetch(`${host.url}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ images: ['cb.png'], filters: ['grayscale'], callback_url: hookUrl }),
    });
    expect(res.status).toBe(202);
    const { job_id: jobId } = (await res.json()) as { job_id: string };

    const job = await waitFor(
      'the callback to be delivered',
      async () => {
        const j = await getJson(`${host!.url}/jobs/${jobId}`);
        return j.callback?.state === 'delivered' ? j : undefined;
      },
      60000,
    );
    expect(job.status).toBe('succeeded');
    expect(job.callback).toMatchObject({ url: hookUrl, attempts: 3, last_status: 200, last_error: null });
    expect(received).toHaveLength(3);
    const event = JSON.parse(received[2].body);
    expect(event).toMatchObject({
      id: job.callback.event_id,
      type: 'job.succeeded',
      job_id: jobId,
      status: 'succeeded',
      status_url: `${host.url}/jobs/${jobId}`,
      tasks: [{ task_id: `${jobId}_0000`, status: 'succeeded', image: 'cb.png', result_url: expect.any(String) }],
    });
    for (const r of received) {
      expect(r.body).toBe(received[2].body);
      expect(verifySignature(SECRET, r.headers['x-signature'] as string, r.body)).toBe(true);
    }
    expect(received.map((r) => r.headers['x-delivery-attempt'])).toEqual(['1', '2', '3']);
    // the result link in the event works
    const result = await fetch(event.tasks[0].result_url);
    expect(result.status).toBe(200);
    expect(result.headers.get('content-type')).toMatch(/^image\//);
  }, 120000);
});
