/**
 * The dashboard as an operator's console, in headless Chromium (playwright-core, Debian's /usr/bin/chromium)
 * against one built local host on Azurite with keys on: the jobs table (status filter, Next/Prev paging), a
 * job's detail and its failed tasks, retry, delete (a dismissed confirm does nothing), and requeue of one dead
 * letter with its message body; actions ask for the admin (master) key when the app answers 401, say when a
 * key is refused, and the master key never goes to a read call. Images are tiny, so the suite stays fast.
 */
import type { Browser, Page } from 'playwright-core';
import { startAzurite, type RunningAzurite } from '../../scripts/azurite';
import { Storage } from '../../shared/storage/clients';
import { resourceNames } from '../../shared/storage/names';
import { DeadLetterStore } from '../../shared/tasks/dead-letters';
import {
  HOST_MAIN,
  jobDone,
  keyed,
  postJson,
  spawnApp,
  stopHost,
  waitFor,
  type HostProcess,
  keyedAppEnv,
} from '../helpers/host';
import { openDashboard, useChromium } from '../helpers/dashboard';
import { photo } from '../helpers/images';
import { uniqueNamespace } from '../helpers/storage';

const FUNCTION_KEY = 'console-function-key-0000000000';
const MASTER_KEY = 'console-master-key-00000000000000';
const FN = keyed(FUNCTION_KEY);
/** The page shows this many jobs at a time (JOBS_LIMIT in dashboard.js); the suite makes one more. */
const PAGE_SIZE = 10;

/** The few browser globals the page-side predicates use (tests compile without the DOM library). */
interface PageElement {
  readonly textContent: string | null;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): { readonly length: number };
};

let azurite: RunningAzurite | undefined;
let host: HostProcess | undefined;
let browser: Browser | undefined;
const chromium = useChromium();
let storage: Storage;
let url: string;
/** Jobs oldest first: the succeeded ones, then `retryJob` (broken.png) and `deadJob` (broken2.png), which failed. */
let okJobs: string[];
let retryJob: string;
let deadJob: string;

async function api(method: string, route: string, headers = FN): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}${route}`, { method, headers });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

/** A page unlocked with the function key; it records every request carrying the master key. */
async function openPage(): Promise<{ page: Page; errors: string[]; masterCalls: string[] }> {
  const masterCalls: string[] = [];
  const { page, errors } = await openDashboard(browser!, url, {
    key: FUNCTION_KEY,
    prepare: (p) =>
      void p.on('request', (r) => {
        if (r.headers()['x-functions-key'] === MASTER_KEY)
          masterCalls.push(`${r.method()} ${new URL(r.url()).pathname}`);
      }),
  });
  await page.waitForSelector('#jobs tbody tr', { timeout: 10000 });
  return { page, errors, masterCalls };
}

const jobRows = (page: Page) => page.locator('#jobs tbody tr');
const rowIds = (page: Page) => jobRows(page).evaluateAll((rows) => rows.map((r) => r.getAttribute('data-job')));

async function openJob(page: Page, jobId: string): Promise<void> {
  await page.click(`#jobs button.open-job[data-job="${jobId}"]`);
  await page.waitForSelector('#job-detail .job-head', { timeout: 10000 });
  expect(await page.locator('#job-detail h3').textContent()).toBe(jobId);
}

/** Types a key into the admin form an action opened, and waits for the form to answer. */
async function typeAdminKey(page: Page, key: string): Promise<void> {
  await page.fill('#admin-key-input', key);
  await page.click('#admin-key-form button[type=submit]');
}

beforeAll(async () => {
  azurite = await startAzurite();
  const namespace = uniqueNamespace();
  storage = new Storage(azurite.connectionString, resourceNames(namespace));
  await storage.ensureResources();
  await storage.images.getBlockBlobClient('tiny.png').uploadData(await photo(16, 12, 'png'));
  await storage.images.getBlockBlobClient('broken.png').uploadData(Buffer.from('not an image at all'));
  await storage.images.getBlockBlobClient('broken2.png').uploadData(Buffer.from('not an image either'));
  host = await spawnApp(
    HOST_MAIN,
    {
      ...keyedAppEnv(azurite.connectionString, namespace, { functionKey: FUNCTION_KEY, masterKey: MASTER_KEY }),
    },
    /Host listening on/,
  );
  url = host.url;
  const submit = (image: string) =>
    postJson(`${url}/jobs`, { images: [image], filters: ['grayscale'], output: { format: 'png' } }, FN);
  // one at a time, so "newest first" is the reverse of this order (the index orders by creation time)
  const ids: string[] = [];
  for (const image of [...Array<string>(PAGE_SIZE - 1).fill('tiny.png'), 'broken.png', 'broken2.png'])
    ids.push((await submit(image)).job_id);
  const done = await Promise.all(ids.map((id) => jobDone(url, id, 60000, FN)));
  expect(done.map((j) => j.status)).toEqual([...Array<string>(PAGE_SIZE - 1).fill('succeeded'), 'failed', 'failed']);
  okJobs = ids.slice(0, PAGE_SIZE - 1);
  [retryJob, deadJob] = ids.slice(PAGE_SIZE - 1);
  browser = await chromium();
}, 90000);

afterAll(async () => {
  if (host) await stopHost(host);
  await azurite?.stop();
}, 30000);

describe('the jobs panel', () => {
  it('lists jobs newest first, filters by status and pages with Next/Prev', async () => {
    const { page, errors } = await openPage();
    const all = [...okJobs, retryJob, deadJob].reverse();
    expect(await rowIds(page)).toEqual(all.slice(0, PAGE_SIZE));
    expect(await page.locator('#jobs-prev').isDisabled()).toBe(true);
    expect(await page.locator('#jobs-page').textContent()).toBe('page 1');

    await page.click('#jobs-next');
    await page.waitForFunction(() => document.querySelector('#jobs-page')?.textContent === 'page 2');
    await page.waitForFunction(() => document.querySelectorAll('#jobs tbody tr').length === 1);
    expect(await rowIds(page)).toEqual(all.slice(PAGE_SIZE));
    expect(await page.locator('#jobs-next').isDisabled()).toBe(true);
    await page.click('#jobs-prev');
    await page.waitForFunction((n) => document.querySelectorAll('#jobs tbody tr').length === n, PAGE_SIZE);
    expect(await rowIds(page)).toEqual(all.slice(0, PAGE_SIZE));

    await page.selectOption('#jobs-status', 'failed');
    await page.waitForFunction(() => document.querySelectorAll('#jobs tbody tr').length === 2);
    expect(await rowIds(page)).toEqual([deadJob, retryJob]);
    expect(await jobRows(page).locator('.badge').allTextContents()).toEqual(['failed', 'failed']);
    expect(await page.locator('#jobs-next').isDisabled()).toBe(true);
    await page.selectOption('#jobs-status', 'processing');
    await page.waitForFunction(() => document.querySelector('#jobs')?.textContent?.includes('No processing job'));
    expect(errors).toEqual([]);
    await page.close();
  }, 60000);

  it('opens a job: its tasks with status, image, attempts, worker and result link', async () => {
    const { page, errors } = await openPage();
    await openJob(page, okJobs.at(-1)!);
    const detail = page.locator('#job-detail');
    expect(await detail.locator('.job-head .badge').textContent()).toBe('succeeded');
    const task = detail.locator('.all-tasks tbody tr');
    expect(await task.count()).toBe(1);
    const cells = await task.locator('td').allTextContents();
    expect(cells[1]).toBe('tiny.png');
    expect(cells[2]).toBe('succeeded');
    expect(cells[3]).toBe('1');
    expect(cells[4]).not.toBe('—');
    expect(await task.locator('a.task-result').getAttribute('href')).toMatch(/^\.\/tasks\/.+\/result$/);
    expect(await detail.locator('.failed-tasks').count()).toBe(0);
    expect(await detail.locator('button.retry-job').count()).toBe(0);
    await page.click('#job-detail button.close-job');
    await page.waitForSelector('#job-detail', { state: 'hidden' });
    expect(errors).toEqual([]);
    await page.close();
  }, 30000);
});

describe('actions', () => {
  it('retries a failed job from its failed-tasks view: the task goes back to work and succeeds', async () => {
    const { page, errors, masterCalls } = await openPage();
    await page.selectOption('#jobs-status', 'failed');
    await page.waitForSelector(`#jobs button.open-job[data-job="${retryJob}"]`);
    await openJob(page, retryJob);
    const failed = page.locator('#job-detail .failed-tasks tbody tr');
    expect(await failed.count()).toBe(1);
    const cells = await failed.locator('td').allTextContents();
    expect(cells[1]).toBe('broken.png');
    expect(cells[4]).not.toBe(''); // the reason
    // the operator fixes the image, then retries
    await storage.images.getBlockBlobClient('broken.png').uploadData(await photo(16, 12, 'png'));
    page.once('dialog', (d) => void d.accept());
    await page.click('#job-detail button.retry-job');
    await page.waitForFunction(() =>
      document.querySelector('#job-action')?.textContent?.includes('1 failed task(s) back to work'),
    );
    await page.waitForFunction(
      () => document.querySelector('#job-detail .job-head .badge')?.textContent === 'succeeded',
      undefined,
      { timeout: 30000 },
    );
    const job = await api('GET', `/jobs/${retryJob}`);
    expect([job.json.status, job.json.tasks[0].attempts]).toEqual(['succeeded', 2]);
    expect(masterCalls).toEqual([]); // retry takes the function key: no admin key was asked for or sent
    expect(errors).toEqual([]);
    await page.close();
  }, 60000);

  it('deletes a job: a dismissed confirm does nothing; accepted, it asks for the admin key and removes the job', async () => {
    const { page, errors, masterCalls } = await openPage();
    const victim = okJobs.at(-1)!;
    await openJob(page, victim);
    const deletes: string[] = [];
    page.on('request', (r) => r.method() === 'DELETE' && deletes.push(r.url()));
    const dialogs: string[] = [];
    page.once('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.click('#job-detail button.delete-job');
    await waitFor('the confirm dialog', async () => (dialogs.length ? true : undefined), 5000, 50);
    expect(dialogs[0]).toMatch(new RegExp(`Delete job ${victim}.*cannot be undone`));
    expect(deletes).toEqual([]);
    expect(await page.locator('#admin-key-form').count()).toBe(0);
    expect((await api('GET', `/jobs/${victim}`)).status).toBe(200);

    page.once('dialog', (d) => void d.accept());
    await page.click('#job-detail button.delete-job');
    await page.waitForSelector('#job-action #admin-key-form', { timeout: 10000 });
    expect(await page.locator('#job-action .key-message').textContent()).toBe(
      `Delete job ${victim.slice(0, 8)} needs the admin (master) key.`,
    );
    await typeAdminKey(page, MASTER_KEY);
    await page.waitForFunction(() => document.querySelector('#job-action')?.textContent?.includes('deleted'));
    expect((await api('GET', `/jobs/${victim}`)).status).toBe(404);
    await page.waitForSelector('#job-detail', { state: 'hidden' });
    await page.waitForFunction((id) => !document.querySelector(`#jobs tr[data-job="${id}"]`), victim);
    // the first DELETE went with the function key (401: the form asked), the second with the master key
    expect(deletes).toHaveLength(2);
    // the master key went to the DELETE only, never to a read
    expect(masterCalls).toEqual([`DELETE /api/jobs/${victim}`]);
    expect(errors).toEqual([]);
    await page.close();
  }, 60000);

  it('shows a dead letter with its message and requeues that one letter; a wrong admin key is refused', async () => {
    const job = (await api('GET', `/jobs/${deadJob}`)).json;
    const task = job.tasks[0];
    const message = JSON.stringify({
      v: 1,
      task_id: task.task_id,
      job_id: deadJob,
      image: task.image,
      filters: task.filters,
      output: task.output_spec,
      submitted_at: task.created_at,
    });
    await new DeadLetterStore(storage.deadLetters).record({
      capability: task.capability,
      id: task.task_id,
      task_id: task.task_id,
      reason: 'exhausted_retries',
      message,
      dequeue_count: 5,
      error: 'gave up',
    });
    const { page, errors, masterCalls } = await openPage();
    const button = page.locator(`#dead button.requeue-one[data-id="${task.task_id}"]`);
    await button.waitFor({ timeout: 15000 });
    const letter = page.locator('#dead li', {
      has: page.locator(`button.requeue-one[data-id="${task.task_id}"]`),
    });
    // the body is collapsed until opened, and stays open across refreshes
    expect(await letter.locator('details.dead-body').getAttribute('open')).toBeNull();
    await letter.locator('details.dead-body summary').click();
    expect(await letter.locator('details.dead-body pre').textContent()).toContain(`"task_id": "${task.task_id}"`);
    const updated = await page.locator('#status-text').textContent();
    await page.waitForFunction((before) => document.querySelector('#status-text')?.textContent !== before, updated);
    expect(await letter.locator('details.dead-body').getAttribute('open')).not.toBeNull();

    page.once('dialog', (d) => void d.accept());
    await button.click();
    await page.waitForSelector('#admin #admin-key-form', { timeout: 10000 });
    expect(await page.locator('#admin .key-message').textContent()).toBe(
      `Requeue dead letter ${task.task_id} needs the admin (master) key.`,
    );
    await typeAdminKey(page, 'not-the-master-key');
    await page.waitForFunction(() => document.querySelector('#admin')?.textContent?.includes('That key was refused'));
    await typeAdminKey(page, MASTER_KEY);
    await page.waitForFunction(() => document.querySelector('#admin')?.textContent?.includes('requeued dead letter'));
    const letters = (await api('GET', '/dead-letters')).json.capabilities.flatMap(
      (c: { dead_letters: { id: string }[] }) => c.dead_letters,
    );
    expect(letters.map((l: { id: string }) => l.id)).not.toContain(task.task_id);
    // back to work: a worker ran it again (broken2.png is still broken, so it fails once more, on attempt 2)
    await waitFor('the requeued task to run', async () => {
      const t = (await api('GET', `/jobs/${deadJob}`)).json.tasks[0];
      return t.attempts === 2 && t.status === 'failed' ? t : undefined;
    });
    expect(masterCalls).toEqual([`POST /api/dead-letters/${task.capability}/${task.task_id}/requeue`]);
    expect(errors).toEqual([]);
    await page.close();
  }, 60000);
});
