/**
 * The dashboard's capability cards read one snapshot: the queue card and the scaling advice show the same instant
 * (the snapshot's timestamp), the queue figure is the one the advice was computed from, the queues read now are
 * in the card's tooltip, and latency shows p50/p95/p99. The local host on Azurite after a real job, in headless
 * Chromium (playwright-core, Debian's /usr/bin/chromium), as tests/e2e/dashboard.test.ts does. Needs the build.
 */
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { Storage } from '../../shared/storage/clients';
import { resourceNames } from '../../shared/storage/names';
import { startAzurite, type RunningAzurite } from '../../scripts/azurite';
import { seedSampleImages } from '../../scripts/seed';
import { getJson, HOST_MAIN, jobDone, postJson, spawnApp, stopHost, waitFor, type HostProcess } from '../helpers/host';
import { newPage, useChromium } from '../helpers/dashboard';
import { uniqueNamespace } from '../helpers/storage';

interface PageElement {
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
}
declare const document: { querySelector(selector: string): PageElement | null };

let azurite: RunningAzurite | undefined;
let host: HostProcess | undefined;
let browser: Browser | undefined;
const chromium = useChromium();
let url: string;

beforeAll(async () => {
  azurite = await startAzurite();
  const ns = uniqueNamespace();
  await seedSampleImages(new Storage(azurite.connectionString, resourceNames(ns)));
  host = await spawnApp(
    HOST_MAIN,
    {
      AzureWebJobsStorage: azurite.connectionString,
      STORAGE_NAMESPACE: ns,
      METRICS_SCHEDULE: '*/2 * * * * *',
      WORKER_HEARTBEAT_SECONDS: '1',
    },
    /Host listening on/,
  );
  url = host.url;
  const job = await postJson(`${url}/jobs`, { filters: [{ name: 'median', size: 3 }] });
  expect((await jobDone(url, job.job_id, 40000)).status).toBe('succeeded');
  // a snapshot whose window holds the job's completions
  await waitFor(
    'a snapshot with heavy latency percentiles',
    async () => {
      const { snapshots } = await getJson(`${url}/metrics/history?minutes=5`);
      return snapshots.some(
        (s: { capabilities: { heavy: { tasks: { latency_ms: { p95: number | null } } } } }) =>
          s.capabilities.heavy.tasks.latency_ms.p95 !== null,
      )
        ? true
        : undefined;
    },
    15000,
    250,
  );
  browser = await chromium();
}, 90000);

afterAll(async () => {
  if (host) await stopHost(host);
  await azurite?.stop();
}, 30000);

async function open(page: Page): Promise<void> {
  await page.goto(`${url}/dashboard`);
  await page.waitForSelector('#content:not([hidden])', { timeout: 10000 });
  await page.waitForSelector('.capability[data-capability="heavy"] .rec-at:not(:empty)', { timeout: 10000 });
}

describe('the capability cards in a browser', () => {
  it("show the queue and the advice of one snapshot, with its instant; the queue read now in the card's tooltip", async () => {
    // the app's own answer, then a later reading of the queue that differs from the snapshot's
    const real = await getJson(`${url}/metrics`);
    const timestamp = '2026-12-02T07:30:04.000Z';
    const heavy = {
      ...real.capabilities.heavy,
      queue_length: 7,
      recommendation: { ...real.capabilities.heavy.recommendation, reason: 'the backlog of 7 drains in 3 s' },
    };
    const fixture = {
      ...real,
      timestamp,
      capabilities: { ...real.capabilities, heavy },
      live: {
        read_at: '2026-12-02T07:30:06.500Z',
        capabilities: {
          ...real.live.capabilities,
          heavy: { queue_length: 2, poison_length: 0, oldest_message_age_s: 1 },
        },
      },
    };
    const { page, errors } = await newPage(browser!);
    await page.route('**/api/metrics', (r) => r.fulfill({ json: fixture }));
    await open(page);
    await page.waitForFunction(
      (at) => document.querySelector('.capability[data-capability="heavy"] .rec-at')?.getAttribute('data-at') === at,
      timestamp,
      { timeout: 10000 },
    );
    const card = page.locator('.capability[data-capability="heavy"]');
    const queue = card.locator('.kpi').first();
    const clock = await page.evaluate(
      (t) =>
        new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }),
      timestamp,
    );
    expect(await queue.locator('.kpi-label').textContent()).toBe('Queue');
    expect(await queue.locator('.kpi-value').textContent()).toBe('7');
    expect(await queue.locator('.kpi-sub').textContent()).toContain(`at ${clock}`);
    expect(await queue.getAttribute('data-at')).toBe(timestamp);
    expect(await card.locator('.rec-at').textContent()).toBe(`at ${clock}`);
    expect(await card.locator('.reason').textContent()).toBe('the backlog of 7 drains in 3 s');
    expect(await queue.getAttribute('title')).toMatch(/^2 waiting when read at \d\d:\d\d:\d\d$/);
    expect(errors).toEqual([]);
    await page.close();
  }, 30000);

  it('with the real API: the queue card and the advice carry the timestamp of the same /api/metrics answer, and latency shows p50 and p99', async () => {
    const { page, errors } = await newPage(browser!);
    // each answer the page receives is recorded; the page renders the last one
    const answers: { timestamp: string; capabilities: Record<string, { queue_length: number }> }[] = [];
    await page.route('**/api/metrics', async (r) => {
      const response = await r.fetch();
      const body = await response.json();
      answers.push(body);
      await r.fulfill({ response, json: body });
    });
    await open(page);
    const shown = await page.evaluate(() => {
      const card = document.querySelector('.capability[data-capability="heavy"]');
      const queue = document.querySelector('.capability[data-capability="heavy"] .kpi');
      return {
        queueAt: queue?.getAttribute('data-at'),
        queue: document.querySelector('.capability[data-capability="heavy"] .kpi .kpi-value')?.textContent,
        adviceAt: document.querySelector('.capability[data-capability="heavy"] .rec-at')?.getAttribute('data-at'),
        latency: document.querySelector('.capability[data-capability="heavy"] .kpi:nth-child(4) .kpi-sub')?.textContent,
        card: card !== null,
      };
    });
    expect(shown.card).toBe(true);
    expect(shown.adviceAt).toBe(shown.queueAt);
    const answer = answers.find((a) => a.timestamp === shown.queueAt);
    expect(answer).toBeDefined();
    expect(shown.queue).toBe(String(answer!.capabilities.heavy.queue_length));
    expect(shown.latency).toMatch(/^p50 .+ · p99 .+ · /);
    await page.screenshot({ path: path.join(os.tmpdir(), 'dashboard-metrics.png'), fullPage: false });
    expect(errors).toEqual([]);
    await page.close();
  }, 30000);
});
