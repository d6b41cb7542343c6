/**
 * Retention on Azurite with a fake clock (`now` is passed in): what expires goes, what is recent or still
 * running stays, a run stops at RETENTION_MAX_DELETES and the next one continues, and a run over what is
 * already clean deletes nothing.
 */
import { randomUUID } from 'node:crypto';
import { loadSettings } from '../../../shared/config';
import { normalizeTaskSpec } from '../../../shared/imaging/spec';
import type { Storage } from '../../../shared/storage/clients';
import { SAMPLE_METADATA } from '../../../shared/storage/images';
import { DeadLetterStore } from '../../../shared/tasks/dead-letters';
import { applyRetention, retentionSummary, type RetentionReport } from '../../../shared/tasks/retention';
import { JobIndex } from '../../../shared/tasks/job-index';
import { createJob } from '../../../shared/tasks/jobs';
import { TaskStore, type TaskRecord } from '../../../shared/tasks/store';
import { job, type Outcome } from '../../helpers/aged-jobs';
import { useAzurite } from '../../helpers/storage';

const env = useAzurite();
const DAY = 24 * 60 * 60 * 1000;
/** The fake clock of a run: 40 days from now, so what is written "now" is 40 days old. */
const LATER = () => new Date(Date.now() + 40 * DAY);
const ago = (now: Date, days: number) => new Date(now.getTime() - days * DAY);

async function taskIds(storage: Storage): Promise<string[]> {
  const ids: string[] = [];
  for await (const e of storage.tasks.listEntities({ queryOptions: { select: ['RowKey'] } })) ids.push(e.rowKey!);
  return ids.sort();
}

async function blobs(container: Storage['processed']): Promise<string[]> {
  const names: string[] = [];
  for await (const b of container.listBlobsFlat()) names.push(b.name);
  return names.sort();
}

async function rows(table: Storage['metrics']): Promise<string[]> {
  const keys: string[] = [];
  for await (const e of table.listEntities()) keys.push(`${e.partitionKey}/${e.rowKey}`);
  return keys.sort();
}

const ids = (...jobs: TaskRecord[][]) => jobs.flat().map((t) => t.task_id);
const resultsOf = (...jobs: TaskRecord[][]) =>
  jobs
    .flat()
    .filter((t) => t.output)
    .map((t) => t.output!.blob);
const sweep = (report: RetentionReport, name: string) => report.sweeps.find((s) => s.name === name)!;

/** The two ways a run finds jobs to examine: the job index (most days), a scan of the task records (every Nth). */
const FOUND_BY = [
  ['job index', { RETENTION_TASKS_SCAN_DAYS: '0' }],
  ['task scan', { RETENTION_TASKS_SCAN_DAYS: '1' }],
] as const;

describe.each(FOUND_BY)('task records found by the %s', (foundBy, scan) => {
  it("removes an ended job's records and results once its last task ended before the cutoff; keeps recent and running jobs", async () => {
    const storage = await env.storage();
    const now = LATER();
    const old = ago(now, 40);
    const ended = await job(storage, ['succeeded', 'failed', 'succeeded'], [old, old, old]);
    // 150 tasks: two transactions of its partition
    const bigFailed = await job(storage, Array<Outcome>(150).fill('failed'), Array<Date>(150).fill(old));
    const recent = await job(storage, ['succeeded'], [ago(now, 1)]);
    // one task ended long ago, the other (retried) yesterday: the job ended yesterday
    const retried = await job(storage, ['succeeded', 'failed'], [old, ago(now, 1)]);
    const running = await job(storage, ['succeeded', 'processing'], [old, old]);
    const waiting = await job(storage, ['failed', 'queued'], [old, old]);
    // results by age are another sweep: off here, so only the job sweep deletes results
    const settings = loadSettings({ RETENTION_TASKS_DAYS: '30', RETENTION_RESULTS_DAYS: '0', ...scan });

    const report = await applyRetention(storage, settings, now);

    expect(await taskIds(storage)).toEqual(ids(recent, retried, running, waiting).sort());
    expect(await blobs(storage.processed)).toEqual(resultsOf(recent, retried, running).sort());
    expect(sweep(report, 'task records')).toMatchObject({
      deleted: 153,
      results_deleted: 2,
      left: 0,
      kept_running_jobs: 2,
      cutoff: ago(now, 30).toISOString(),
      found_by: foundBy,
    });
    expect(report).toMatchObject({ deleted: 155, left: 0, complete: true });
    const label = foundBy === 'task scan' ? 'task records (found by a scan of all task records)' : 'task records';
    expect(retentionSummary(report)).toMatch(`retention: 155 deleted, nothing expired is left; ${label}: 153 deleted`);

    // idempotent: the same run again finds nothing to delete and keeps the same jobs
    const again = await applyRetention(storage, settings, now);
    expect(again).toMatchObject({ deleted: 0, left: 0, complete: true });
    expect(await taskIds(storage)).toEqual(ids(recent, retried, running, waiting).sort());
    expect(ended.length + bigFailed.length).toBe(153);
  });

  it("removes a job's row in the job index with its last records, and keeps the rows of jobs it keeps", async () => {
    const storage = await env.storage();
    const now = LATER();
    const spec = normalizeTaskSpec({ filters: ['grayscale'] });
    const fail = { type: 'job_failure' as const, reason: 'corrupt_image', error: 'bad' };
    const old = await createJob(storage, ['a.jpg', 'b.jpg'], spec, ago(now, 40));
    const recent = await createJob(storage, ['a.jpg'], spec, ago(now, 2));
    for (const t of [...old.tasks, ...recent.tasks]) {
      await new TaskStore(storage.tasks).fail(t.task_id, fail, new Date(t.created_at));
    }
    const indexed = async () => {
      const jobs: string[] = [];
      for await (const e of storage.jobs.listEntities()) jobs.push(e.rowKey!.split('_')[1]);
      return jobs;
    };
    expect((await indexed()).sort()).toEqual([old.job_id, recent.job_id].sort());
    const report = await applyRetention(storage, loadSettings(scan), now);
    expect(sweep(report, 'task records')).toMatchObject({ deleted: 2, job_index_rows_deleted: 1 });
    expect(await indexed()).toEqual([recent.job_id]);
  });

  it('stops at RETENTION_MAX_DELETES, keeps each record with its result, and the next runs finish the work', async () => {
    const storage = await env.storage();
    const now = LATER();
    const old = ago(now, 40);
    const jobs = [];
    for (let i = 0; i < 3; i++) jobs.push(await job(storage, Array<Outcome>(5).fill('succeeded'), Array(5).fill(old)));
    const settings = loadSettings({ RETENTION_MAX_DELETES: '12', RETENTION_RESULTS_DAYS: '0', ...scan });

    const first = await applyRetention(storage, settings, now);
    // 5 records + 5 results of the first job, then 1 record + its result of the second
    expect(first).toMatchObject({ deleted: 12, complete: false, left: 9 });
    expect(retentionSummary(first)).toContain('9 expired left for the next run (RETENTION_MAX_DELETES 12 reached)');
    const remaining = await taskIds(storage);
    expect(remaining).toHaveLength(9);
    // a record that is still there still has its result
    const results = await blobs(storage.processed);
    expect(remaining.map((id) => `${id}.jpg`)).toEqual(results);

    const reports = [first];
    while (!reports[reports.length - 1].complete) {
      reports.push(await applyRetention(storage, settings, now));
      expect(reports.length).toBeLessThan(10);
    }
    for (const r of reports) expect(r.deleted).toBeLessThanOrEqual(12);
    expect(reports.reduce((n, r) => n + r.deleted, 0)).toBe(30);
    expect(await taskIds(storage)).toEqual([]);
    expect(await blobs(storage.processed)).toEqual([]);
    expect(await applyRetention(storage, settings, now)).toMatchObject({ deleted: 0, left: 0 });
  });

  it('keeps everything with RETENTION_TASKS_DAYS=0', async () => {
    const storage = await env.storage();
    const now = LATER();
    const ended = await job(storage, ['succeeded'], [ago(now, 400)]);
    const report = await applyRetention(storage, loadSettings({ RETENTION_TASKS_DAYS: '0', ...scan }), now);
    expect(sweep(report, 'task records')).toMatchObject({ deleted: 0, skipped: 'kept forever' });
    expect(await taskIds(storage)).toEqual(ids(ended));
  });
});

describe('records the job index does not have', () => {
  /** A day the default RETENTION_TASKS_SCAN_DAYS (30) scans: its UTC day number is a multiple of 30. */
  const scanDay = () => new Date(Math.ceil((Date.now() + 40 * DAY) / (30 * DAY)) * 30 * DAY + 3.5 * 60 * 60 * 1000);
  const indexed = async (storage: Storage) => {
    const jobs: string[] = [];
    for await (const e of storage.jobs.listEntities()) jobs.push(String(e.job_id));
    return jobs.sort();
  };

  it('removes the records of a job without an index row on a scan day (every RETENTION_TASKS_SCAN_DAYS-th), not before', async () => {
    const storage = await env.storage();
    const now = scanDay();
    const old = ago(now, 40);
    // created before the job index existed, or a delete that stopped after it removed the row
    const unindexed = await job(storage, ['succeeded', 'failed'], [old, old], { indexed: false });
    const ended = await job(storage, ['failed'], [old]);
    // the default RETENTION_TASKS_SCAN_DAYS; results by age are another sweep: off, so only this one deletes results
    const settings = loadSettings({ RETENTION_RESULTS_DAYS: '0' });
    expect(settings.retentionTasksScanDays).toBe(30);

    const dayBefore = await applyRetention(storage, settings, ago(now, 1));
    expect(sweep(dayBefore, 'task records')).toMatchObject({ found_by: 'job index', deleted: 1 });
    expect(await taskIds(storage)).toEqual(ids(unindexed));

    const report = await applyRetention(storage, settings, now);
    expect(sweep(report, 'task records')).toMatchObject({
      found_by: 'task scan',
      deleted: 2,
      results_deleted: 1,
      job_index_rows_deleted: 0,
    });
    expect(retentionSummary(report)).toContain('task records (found by a scan of all task records): 2 deleted');
    expect(await taskIds(storage)).toEqual([]);
    expect(await blobs(storage.processed)).toEqual([]);
    expect(ended).toHaveLength(1);

    // 0 never scans
    await job(storage, ['failed'], [old], { indexed: false });
    const never = await applyRetention(storage, loadSettings({ RETENTION_TASKS_SCAN_DAYS: '0' }), now);
    expect(sweep(never, 'task records')).toMatchObject({ found_by: 'job index', deleted: 0 });
    expect(await taskIds(storage)).toHaveLength(1);
  });

  it('removes an index row older than the cutoff whose job has no records left, and keeps a new one', async () => {
    const storage = await env.storage();
    const now = LATER();
    const row = (jobId: string, at: Date) => ({
      job_id: jobId,
      created_at: at.toISOString(),
      total: 1,
      capability: 'light',
      images: 1,
      filters: [],
      output_format: 'jpeg',
    });
    // a run stopped between a job's last records and its row; a job being created (its row comes first)
    const [stale, creating] = [randomUUID(), randomUUID()];
    await new JobIndex(storage.jobs).add(row(stale, ago(now, 40)));
    await new JobIndex(storage.jobs).add(row(creating, now));
    const report = await applyRetention(storage, loadSettings({ RETENTION_TASKS_SCAN_DAYS: '0' }), now);
    expect(sweep(report, 'task records')).toMatchObject({ deleted: 0, job_index_rows_deleted: 1, left: 0 });
    expect(await indexed(storage)).toEqual([creating]);
  });
});

describe('results and uploads', () => {
  async function populate(storage: Storage) {
    await storage.images.getBlockBlobClient('upload.jpg').uploadData(Buffer.from('u'));
    await storage.images
      .getBlockBlobClient('sample_640x480.jpg')
      .uploadData(Buffer.from('s'), { metadata: { ...SAMPLE_METADATA } });
    await storage.processed.getBlockBlobClient('orphan.jpg').uploadData(Buffer.from('r'));
  }

  it('deletes blobs last modified before the cutoff, never the sample set', async () => {
    const storage = await env.storage();
    await populate(storage);
    const settings = loadSettings({ RETENTION_RESULTS_DAYS: '30', RETENTION_UPLOADS_DAYS: '30' });

    // written just now: nothing is old yet
    expect(await applyRetention(storage, settings, new Date())).toMatchObject({ deleted: 0, left: 0 });
    expect(await blobs(storage.images)).toEqual(['sample_640x480.jpg', 'upload.jpg']);

    const report = await applyRetention(storage, settings, LATER());
    expect(sweep(report, 'results')).toMatchObject({ deleted: 1, left: 0, retention_days: 30 });
    expect(sweep(report, 'uploads')).toMatchObject({ deleted: 1, left: 0, retention_days: 30 });
    expect(await blobs(storage.images)).toEqual(['sample_640x480.jpg']);
    expect(await blobs(storage.processed)).toEqual([]);
  });

  it("leaves blobs to the storage account's lifecycle rules with RETENTION_BLOBS=lifecycle", async () => {
    const storage = await env.storage();
    await populate(storage);
    const report = await applyRetention(storage, loadSettings({ RETENTION_BLOBS: 'lifecycle' }), LATER());
    expect(sweep(report, 'uploads')).toMatchObject({ deleted: 0, skipped: expect.stringContaining('lifecycle') });
    expect(await blobs(storage.images)).toEqual(['sample_640x480.jpg', 'upload.jpg']);
    expect(await blobs(storage.processed)).toEqual(['orphan.jpg']);
  });

  it('counts blobs beyond the budget as left', async () => {
    const storage = await env.storage();
    for (const n of ['a', 'b', 'c']) await storage.processed.getBlockBlobClient(`${n}.jpg`).uploadData(Buffer.from(n));
    const settings = loadSettings({ RETENTION_MAX_DELETES: '2' });
    const first = await applyRetention(storage, settings, LATER());
    expect(sweep(first, 'results')).toMatchObject({ deleted: 2, left: 1 });
    expect(await applyRetention(storage, settings, LATER())).toMatchObject({ deleted: 1, left: 0, complete: true });
  });
});

describe('aged tables', () => {
  it('ages out dead letters by failed_at and metrics rows by their last write', async () => {
    const storage = await env.storage();
    const now = LATER();
    const letters = new DeadLetterStore(storage.deadLetters);
    const letter = (id: string) => ({
      capability: 'light' as const,
      id,
      task_id: null,
      reason: 'exhausted_retries',
      message: '{}',
      dequeue_count: null,
      error: null,
    });
    await letters.record(letter('old'), ago(now, 15));
    await letters.record(letter('recent'), ago(now, 13));
    await storage.metrics.createEntity({ partitionKey: 'snapshots', rowKey: '1' });
    await storage.metrics.createEntity({ partitionKey: 'other', rowKey: '2' });

    // metrics rows are 40 days old at `now`: kept for 50 days, gone at 7
    const keep = await applyRetention(storage, loadSettings({ RETENTION_METRICS_DAYS: '50' }), now);
    expect(sweep(keep, 'dead letters')).toMatchObject({ deleted: 1, retention_days: 14 });
    expect(sweep(keep, 'metrics')).toMatchObject({ deleted: 0, left: 0 });
    expect((await letters.list('light')).map((l) => l.id)).toEqual(['recent']);

    const report = await applyRetention(storage, loadSettings({}), now);
    expect(sweep(report, 'metrics')).toMatchObject({ deleted: 2, retention_days: 7 });
    expect(await rows(storage.metrics)).toEqual([]);
  });

  it('ages out completion callbacks that ended (delivered or dead) with the task records, never a pending one', async () => {
    const storage = await env.storage();
    for (const state of ['delivered', 'dead', 'pending', 'delivering']) {
      await storage.callbacks.createEntity({ partitionKey: `job-${state}`, rowKey: 'callback', state });
    }
    // the rows were written now; 31 days later they are past RETENTION_TASKS_DAYS (30)
    const report = await applyRetention(storage, loadSettings({}), new Date(Date.now() + 31 * DAY));
    expect(sweep(report, 'callbacks')).toMatchObject({ deleted: 2, retention_days: 30 });
    expect(await rows(storage.callbacks)).toEqual(['job-delivering/callback', 'job-pending/callback']);
    const kept = await applyRetention(
      storage,
      loadSettings({ RETENTION_TASKS_DAYS: '0' }),
      new Date(Date.now() + 99 * DAY),
    );
    expect(sweep(kept, 'callbacks')).toMatchObject({ deleted: 0 });
  });

  it('never keeps metrics for less than METRICS_RETENTION_MINUTES', async () => {
    const storage = await env.storage();
    await storage.metrics.createEntity({ partitionKey: 'snapshots', rowKey: '1' });
    const settings = loadSettings({ RETENTION_METRICS_DAYS: '1', METRICS_RETENTION_MINUTES: '10080' });
    const report = await applyRetention(storage, settings, new Date(Date.now() + 2 * DAY));
    expect(sweep(report, 'metrics')).toMatchObject({ deleted: 0, retention_days: 7 });
    expect(await rows(storage.metrics)).toEqual(['snapshots/1']);
  });
});
