/**
 * The dashboard as a person sees it: the local host on Azurite after real jobs, opened in
 * headless Chromium (playwright-core, Debian's /usr/bin/chromium). Needs the build (npm test
 * builds first). UPDATE_SCREENSHOT=1 writes the README's docs/dashboard.png; otherwise the
 * screenshot goes to the temp folder, so a test run never changes tracked files. The host checks keys
 * (LOCAL_HOST_AUTH=keys, as `npm start` runs it): the page opens locked and the tests type the key into its form.
 */
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { dashboardRoutes } from '../../shared/http/dashboard';
import { PROBLEM_TYPE_PREFIX } from '../../shared/http/respond';
import { Storage } from '../../shared/storage/clients';
import { startAzurite, type RunningAzurite } from '../../scripts/azurite';
import { SAMPLE_SET } from '../../scripts/samples';
import { seedSampleImages } from '../../scripts/seed';
import { getJson, HOST_MAIN, jobDone, keyed, postJson, spawnApp, stopHost, type HostProcess } from '../helpers/host';
import { newPage, openDashboard, unlock, useChromium } from '../helpers/dashboard';
import { call } from '../helpers/http';
import { uniqueNamespace } from '../helpers/storage';
import { resourceNames } from '../../shared/storage/names';

const UPDATE_SCREENSHOT = process.env.UPDATE_SCREENSHOT === '1';
const SCREENSHOT = UPDATE_SCREENSHOT
  ? path.resolve(__dirname, '../../docs/dashboard.png')
  : path.join(os.tmpdir(), 'dashboard.png');
const SHOTS = os.tmpdir();
const FUNCTION_KEY = 'dashboard-function-key-000000';
const MASTER_KEY = 'dashboard-master-key-0000000000';
const KEY = keyed(FUNCTION_KEY);

/** The few browser globals the page-side predicates use (tests compile without the DOM library). */
interface PageElement {
  readonly href: string;
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
}
declare const document: {
  readonly activeElement: PageElement | null;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement>;
};
declare const window: { Chart?: { instances: Record<string, { data: { datasets: { data: unknown[] }[] } }> } };
declare const sessionStorage: { getItem(name: string): string | null; readonly length: number };
declare const localStorage: { readonly length: number };

let azurite: RunningAzurite | undefined;
let host: HostProcess | undefined;
let browser: Browser | undefined;
const chromium = useChromium();
let url: string;
let taskIds: string[];

/** The dashboard unlocked with the function key; its uncaught exceptions and (from the unlock on) console errors. */
const openPage = () => openDashboard(browser!, url, { key: FUNCTION_KEY, consoleErrors: true });

beforeAll(async () => {
  azurite = await startAzurite();
  // The README's screenshot shows the names a user sees (tasks-light, …): this Azurite is the test's own, so
  // the default names cannot collide; a normal run keeps its namespace like every other test.
  const ns = UPDATE_SCREENSHOT ? '' : uniqueNamespace();
  await seedSampleImages(new Storage(azurite.connectionString, resourceNames(ns)));
  host = await spawnApp(
    HOST_MAIN,
    {
      AzureWebJobsStorage: azurite.connectionString,
      STORAGE_NAMESPACE: ns,
      LOCAL_HOST_QUEUE_LEASE_SECONDS: '3',
      METRICS_SCHEDULE: '*/2 * * * * *',
      WORKER_HEARTBEAT_SECONDS: '2',
      LOCAL_HOST_AUTH: 'keys',
      LOCAL_HOST_FUNCTION_KEY: FUNCTION_KEY,
      LOCAL_HOST_MASTER_KEY: MASTER_KEY,
    },
    /Host listening on/,
  );
  url = host.url;
  const heavy = await postJson(`${url}/jobs`, { filters: ['blur'] }, KEY);
  const light = await postJson(`${url}/jobs`, { images: ['sample_640x480.jpg'], filters: ['grayscale'] }, KEY);
  const done = await Promise.all([jobDone(url, heavy.job_id, 40000, KEY), jobDone(url, light.job_id, 40000, KEY)]);
  expect(done.map((j) => j.status)).toEqual(['succeeded', 'succeeded']);
  taskIds = done.flatMap((j) => j.tasks.map((t: { task_id: string }) => t.task_id));
  browser = await chromium();
}, 60000);

afterAll(async () => {
  if (host) await stopHost(host);
  await azurite?.stop();
}, 30000);

describe('GET /api/dashboard and its assets', () => {
  it('serves the page and an allow-list of assets with their content types and caching', async () => {
    const page = await fetch(`${url}/dashboard`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('src="./dashboard/assets/chart.umd.js"');
    expect(html).not.toMatch(/https?:\/\//);

    const assets = [
      ['chart.umd.js', 'text/javascript; charset=utf-8', /Chart\.js v4\./],
      ['dashboard.js', 'text/javascript; charset=utf-8', /\.\/metrics\/history\?minutes=/],
      ['dashboard.css', 'text/css; charset=utf-8', /\.card/],
      ['chart.umd.js.map', 'application/json; charset=utf-8', /"sources"/],
    ] as const;
    for (const [name, type, content] of assets) {
      const res = await fetch(`${url}/dashboard/assets/${name}`);
      expect([name, res.status, res.headers.get('content-type')]).toEqual([name, 200, type]);
      expect(res.headers.get('cache-control')).toMatch(/no-cache|max-age=\d+/);
      expect(await res.text()).toMatch(content);
      const again = await fetch(`${url}/dashboard/assets/${name}`, {
        headers: { 'if-none-match': res.headers.get('etag')! },
      });
      expect(again.status).toBe(304);
    }

    const slash = await fetch(`${url}/dashboard/?code=abc`, { redirect: 'manual' });
    expect([slash.status, slash.headers.get('location')]).toEqual([308, '../dashboard?code=abc']);
  });

  it('answers 404 problem+json for any other name, traversal included', async () => {
    const unknown = await fetch(`${url}/dashboard/assets/secrets.js`);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
    expect(await unknown.json()).toMatchObject({ type: `${PROBLEM_TYPE_PREFIX}not_found`, status: 404 });

    for (const name of [
      '..%2F..%2Fpackage.json',
      '..%2Fdashboard.ts',
      '..%5C..%5Cpackage.json',
      '%2E%2E%2Fhost.json',
      'dashboard.js%00.png',
    ]) {
      const res = await fetch(`${url}/dashboard/assets/${name}`);
      const body = await res.text();
      // %00 never reaches a function: Kestrel refuses it (400) decoding the path (src/Shared/UrlDecoder/UrlDecoder.cs)
      expect([name, res.status]).toEqual([name, name.includes('%00') ? 400 : 404]);
      expect(body).not.toMatch(/"dependencies"|routePrefix|import /);
    }
    // Whatever a host decodes, the handler itself refuses a path: only allow-listed names are served.
    const routes = dashboardRoutes();
    for (const file of [
      '../package.json',
      '../../host.json',
      '/etc/passwd',
      'dashboard/../dashboard.js',
      '__proto__',
      'constructor',
    ]) {
      const res = await call(routes.dashboardAssets, {
        path: `/api/dashboard/assets/${encodeURIComponent(file)}`,
        params: { file },
      });
      expect([file, res.status, res.headers['content-type'], res.json?.type]).toEqual([
        file,
        404,
        'application/problem+json; charset=utf-8',
        `${PROBLEM_TYPE_PREFIX}not_found`,
      ]);
    }
  });
});

describe('the dashboard in a browser', () => {
  it('draws live charts, advice per capability, recent tasks and workers without console errors', async () => {
    const { page, errors } = await openPage();
    const capabilities = Object.keys((await getJson(`${url}/metrics`, KEY)).capabilities);
    expect(capabilities.length).toBeGreaterThan(0);

    await page.waitForFunction(
      (count) => {
        const charts = Object.values(window.Chart?.instances ?? {});
        const canvases = [...document.querySelectorAll('.capability canvas')];
        return (
          canvases.length === count &&
          canvases.every((c) => Number(c.getAttribute('data-points')) > 0) &&
          charts.length === count + 1 &&
          charts.every((c) => c.data.datasets[0].data.length > 0)
        );
      },
      capabilities.length,
      { timeout: 15000 },
    );
    await page.waitForSelector('a.task-result', { timeout: 15000 });

    // Live: another job reaches the charts and the recent tasks without a reload.
    const pointsBefore = Number(await page.locator('.capability canvas').first().getAttribute('data-points'));
    // Two jobs are as many tasks as one worker takes at once (batchSize + newBatchThreshold), so the queue shows
    // too; six images each, the sample set without its 4K image, whose median filter alone would take seconds
    const pipeline = {
      images: [...SAMPLE_SET.map((s) => s.name).filter((name) => name !== 'sample_4k.jpg'), 'sample_640x480.jpg'],
      filters: [
        { name: 'median', size: 5 },
        { name: 'blur', radius: 6 },
      ],
    };
    const [more, extra] = [await postJson(`${url}/jobs`, pipeline, KEY), await postJson(`${url}/jobs`, pipeline, KEY)];
    const moreDone = await Promise.all([jobDone(url, more.job_id, 30000, KEY), jobDone(url, extra.job_id, 30000, KEY)]);
    taskIds.push(...moreDone.flatMap((j) => j.tasks.map((t: { task_id: string }) => t.task_id)));
    await page.waitForFunction(
      ([before, jobId]) =>
        Number(document.querySelector('.capability canvas')?.getAttribute('data-points')) > before + 1 &&
        document.querySelector(`a.task-result[href*="${jobId}"]`) !== null,
      [pointsBefore, more.job_id] as const,
      { timeout: 15000 },
    );

    for (const name of capabilities) {
      const card = page.locator(`.capability[data-capability="${name}"]`);
      expect(await card.locator('.rec-action').textContent()).toMatch(/^(SCALE UP|SCALE DOWN|MAINTAIN)$/);
      expect(await card.locator('.keda-replicas').textContent()).toMatch(/^\d+$/);
      expect(await card.locator('.reason').textContent()).not.toBe('');
      expect(await card.locator('.kpi-value').count()).toBe(5);
    }

    const results = await page
      .locator('a.task-result')
      .evaluateAll((links) => links.map((a) => (a as unknown as PageElement).href));
    expect(results.length).toBeGreaterThan(0);
    for (const href of results) expect(href).toMatch(new RegExp(`^${url}/tasks/(${taskIds.join('|')})/result$`));
    const records = await page
      .locator('a.task-record')
      .evaluateAll((links) => links.map((a) => (a as unknown as PageElement).href));
    expect(records.every((href) => /\/tasks\/[^/]+$/.test(href))).toBe(true);
    expect((await fetch(results[0])).status).toBe(401);
    const image = await fetch(results[0], { headers: KEY });
    expect([image.status, image.headers.get('content-type')]).toEqual([200, 'image/jpeg']);
    // read to the end: an unread body keeps its socket, and so the jest worker, alive until garbage collection
    expect((await image.arrayBuffer()).byteLength).toBeGreaterThan(0);
    // A click fetches the result with the key (a plain link could not send it) and shows it from a blob: URL.
    const [popup] = await Promise.all([page.waitForEvent('popup'), page.locator('a.task-result').first().click()]);
    await popup.waitForURL(/^blob:/, { timeout: 10000 });
    await popup.close();

    expect(await page.locator('#workers tbody tr').count()).toBeGreaterThan(0);
    expect(await page.locator('#host .meter').count()).toBe(2);
    expect(await page.locator('#dead .dead-counts .kpi').count()).toBe(capabilities.length);
    expect(await page.locator('#banner').isHidden()).toBe(true);
    expect(await page.getAttribute('html', 'data-state')).toBe('live');

    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 30000);

  it('renders empty states when nothing has run yet', async () => {
    const { page, errors } = await newPage(browser!);
    await page.route('**/api/metrics/history*', (r) => r.fulfill({ json: { minutes: 15, count: 0, snapshots: [] } }));
    await page.route('**/api/workers', (r) => r.fulfill({ json: { count: 0, workers: [] } }));
    await page.goto(`${url}/dashboard`);
    await unlock(page, FUNCTION_KEY);
    await page.waitForSelector('.capability .rec-action:not(:empty)');
    await page.waitForFunction(() =>
      document.querySelector('#workers')?.textContent?.includes('No worker has registered yet'),
    );
    expect(await page.locator('#recent').textContent()).toContain('No worker has registered yet');
    expect(await page.locator('.chart-empty').first().isVisible()).toBe(true);
    expect(await page.locator('.capability canvas').first().getAttribute('data-points')).toBe('0');
    expect(errors).toEqual([]);
    await page.close();
  }, 20000);

  it('lists dead letters with their error and messages still in a poison queue, even when not base64', async () => {
    const { page, errors } = await openPage();
    const letter = {
      capability: 'light',
      id: 'a1',
      task_id: null,
      reason: 'exhausted_retries',
      message: '{}',
      dequeue_count: 5,
      error: 'gave up after 5 attempts',
      failed_at: new Date().toISOString(),
    };
    const garbled = {
      id: 'p1',
      text: '%%% not base64 %%%',
      encoding: 'not_base64',
      dequeue_count: 1,
      inserted_at: new Date().toISOString(),
    };
    const capability = (name: string, extra: object) => ({
      capability: name,
      poison_queue: `tasks-${name}-poison`,
      waiting_in_poison_queue: 0,
      poison_messages: [],
      count: 0,
      dead_letters: [],
      ...extra,
    });
    await page.route('**/api/dead-letters*', (r) =>
      r.fulfill({
        json: {
          capabilities: [
            capability('light', { count: 1, dead_letters: [letter] }),
            capability('heavy', { waiting_in_poison_queue: 1, poison_messages: [garbled] }),
          ],
        },
      }),
    );
    await page.waitForFunction(
      () => document.querySelector('#dead')?.textContent?.includes('not base64, in tasks-heavy-poison'),
      undefined,
      { timeout: 15000 },
    );
    const items = await page.locator('#dead .dead-list li').allTextContents();
    expect(items.join('\n')).toContain('gave up after 5 attempts');
    expect(items.join('\n')).toContain('not base64, in tasks-heavy-poison');
    expect(items.join('\n')).toContain('%%% not base64 %%%');
    expect(errors).toEqual([]);
    await page.close();
  }, 30000);

  it('shows a banner and keeps the last data while the API is unreachable', async () => {
    const { page, errors } = await openPage();
    await page.waitForSelector('a.task-result', { timeout: 15000 });
    const rowsBefore = await page.locator('#recent tbody tr').count();
    await page.route('**/api/{metrics,workers,dead-letters}**', (r) => r.abort('connectionrefused'));
    await page.waitForSelector('#banner:not([hidden])', { timeout: 10000 });
    expect(await page.locator('#banner').textContent()).toMatch(/Cannot reach the API.*retrying/);
    expect(await page.getAttribute('html', 'data-state')).toBe('stale');
    expect(await page.locator('#recent tbody tr').count()).toBe(rowsBefore);
    expect(Number(await page.locator('.capability canvas').first().getAttribute('data-points'))).toBeGreaterThan(0);

    await page.unroute('**/api/{metrics,workers,dead-letters}**');
    await page.waitForSelector('#banner[hidden]', { state: 'attached', timeout: 10000 });
    expect(await page.getAttribute('html', 'data-state')).toBe('live');
    // The refused requests log network errors; the page itself must not throw.
    expect(errors.filter((e) => e.startsWith('page:'))).toEqual([]);
    await page.close();
  }, 30000);
});

describe('the dashboard with keys (LOCAL_HOST_AUTH=keys)', () => {
  /** Where a key could leak in the page: its URL, its document, localStorage; and every request URL. */
  async function leaks(page: Page, requested: string[], key: string): Promise<string[]> {
    const found: string[] = [];
    if (page.url().includes(key)) found.push('the page URL');
    if ((await page.content()).includes(key)) found.push('the document HTML');
    if (await page.evaluate(() => localStorage.length)) found.push('localStorage');
    if (requested.some((u) => u.includes(key) || u.includes('code='))) found.push('a request URL');
    return found;
  }

  it('opens locked, refuses a wrong key, unlocks with the function key, and Lock forgets it', async () => {
    const { page, errors } = await newPage(browser!);
    const requested: string[] = [];
    const keyedCalls: string[] = [];
    page.on('request', (r) => {
      requested.push(r.url());
      if (r.headers()['x-functions-key'] === FUNCTION_KEY) keyedCalls.push(new URL(r.url()).pathname);
    });
    // an old bookmark with ?code=: the key is neither used nor left in the address bar
    await page.goto(`${url}/dashboard?code=${FUNCTION_KEY}`);

    await page.waitForSelector('#lock:not([hidden])', { timeout: 10000 });
    expect(await page.getAttribute('html', 'data-state')).toBe('locked');
    expect(await page.locator('#content').isHidden()).toBe(true);
    expect(await page.locator('#lock-button').isHidden()).toBe(true);
    expect(await page.getAttribute('#key-input', 'type')).toBe('password');
    expect(await page.locator('.capability').count()).toBe(0);
    expect(page.url()).toBe(`${url}/dashboard`);
    requested.length = 0; // the bookmark itself; from here on no request may carry the key in its URL
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-locked.png') });

    await unlock(page, 'not-the-key-000000000000');
    await page.waitForFunction(() => document.querySelector('#key-message')?.textContent?.includes('refused'));
    expect(await page.locator('#lock').isVisible()).toBe(true);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

    await unlock(page, FUNCTION_KEY);
    await page.waitForSelector('#content:not([hidden]) .capability .rec-action:not(:empty)', { timeout: 15000 });
    await page.waitForSelector('a.task-result', { timeout: 15000 });
    expect(await page.getAttribute('html', 'data-state')).toBe('live');
    expect(await page.locator('#lock').isHidden()).toBe(true);
    expect(await page.locator('#lock-button').isVisible()).toBe(true);
    expect(await page.evaluate(() => sessionStorage.getItem('image-pipeline.function-key'))).toBe(FUNCTION_KEY);
    expect(keyedCalls).toEqual(
      expect.arrayContaining(['/api/metrics', '/api/metrics/history', '/api/workers', '/api/dead-letters']),
    );
    expect(await leaks(page, requested, FUNCTION_KEY)).toEqual([]);
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-unlocked.png'), fullPage: true });

    await page.click('#lock-button');
    await page.waitForSelector('#lock:not([hidden])', { timeout: 10000 });
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(await page.locator('.capability').count()).toBe(0);
    expect(await leaks(page, requested, FUNCTION_KEY)).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 30000);

  it('requeue asks for the admin (master) key when the function key gets 401, and keeps it apart', async () => {
    const { page, errors } = await openPage();
    const requested: string[] = [];
    page.on('request', (r) => requested.push(r.url()));
    // One dead letter for light, so the card offers a requeue; the requeue itself goes to the real host.
    await page.route('**/api/dead-letters', (r) =>
      r.fulfill({
        json: {
          capabilities: ['light', 'heavy'].map((name) => ({
            capability: name,
            poison_queue: `tasks-${name}-poison`,
            waiting_in_poison_queue: 0,
            poison_messages: [],
            count: name === 'light' ? 1 : 0,
            dead_letters:
              name === 'light'
                ? [{ capability: 'light', id: 'a1', task_id: null, reason: 'exhausted_retries', failed_at: null }]
                : [],
          })),
        },
      }),
    );
    page.on('dialog', (d) => void d.accept()); // requeue asks to confirm (the console suite dismisses one)
    await page.click('button.requeue[data-capability="light"]', { timeout: 15000 });
    await page.waitForSelector('#admin-key-form', { timeout: 10000 });
    expect(await page.locator('#admin .key-message').textContent()).toBe('Requeue light needs the admin (master) key.');
    // the dead-letter list is redrawn on every refresh: the key being typed keeps its focus
    const updated = await page.locator('#status-text').textContent();
    await page.waitForFunction((before) => document.querySelector('#status-text')?.textContent !== before, updated, {
      timeout: 10000,
    });
    expect(await page.evaluate(() => document.activeElement?.getAttribute('id'))).toBe('admin-key-input');
    await page.fill('#admin-key-input', FUNCTION_KEY);
    await page.click('#admin-key-form button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#admin')?.textContent?.includes('That key was refused'));

    await page.fill('#admin-key-input', MASTER_KEY);
    await page.click('#admin-key-form button[type=submit]');
    // the host let it through: this test's app has no dead letters, so the app itself says so
    await page.waitForFunction(() => document.querySelector('#admin')?.textContent?.includes('No dead letters'));
    expect(await page.evaluate(() => sessionStorage.getItem('image-pipeline.admin-key'))).toBe(MASTER_KEY);
    expect(await page.evaluate(() => sessionStorage.getItem('image-pipeline.function-key'))).toBe(FUNCTION_KEY);
    expect(await leaks(page, requested, MASTER_KEY)).toEqual([]);
    expect(errors.filter((e) => e.startsWith('page:'))).toEqual([]);
    await page.close();
  }, 30000);
});
