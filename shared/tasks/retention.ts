/**
 * Retention: what the app stores expires after the RETENTION_*_DAYS settings (0 keeps it forever), applied by
 * the daily retention timer. One run is idempotent (it deletes only what is expired at `now`, and deleting what
 * is already gone changes nothing) and bounded: at most RETENTION_MAX_DELETES rows and blobs, the rest left for
 * the next run, and the report says how many were left.
 *
 * - Task records go a job at a time: a job whose tasks all ended (none queued or processing) and whose last
 *   task ended before the cutoff. Its result blobs are deleted first, then its records (entity-group
 *   transactions of up to 100 rows of its partition), then its row in the job index, so a record never points
 *   at a result that is gone because of this sweep. A job with a task still queued or processing is never
 *   touched. The jobs to examine come from the job index, a range read of the days before the cutoff (the
 *   task records of newer jobs are never read); every RETENTION_TASKS_SCAN_DAYS-th day from a scan of the task
 *   records instead, which also finds the jobs without an index row (created before the index existed, or
 *   whose delete stopped after removing the row), at the cost of reading every record.
 * - Tables whose rows expire by age alone (dead letters, metrics, and any table added to AGED_TABLES) are
 *   queried with a server-side filter on a time column, keys only, and deleted a partition at a time in
 *   transactions of up to 100 rows.
 * - Results and uploads are blobs older than their cutoff (last modified). Where the storage account's
 *   lifecycle management rules delete them (RETENTION_BLOBS=lifecycle, as the Azure template sets), the
 *   containers are not listed at all; elsewhere (Azurite, Kubernetes with another storage) the timer lists
 *   them. The sample set `npm start` seeds (metadata origin=sample) is never removed.
 *
 * `purge` (DELETE /api/tasks) stays the way to remove everything at once.
 */
import { odata, type TableClient } from '@azure/data-tables';
import type { ContainerClient } from '@azure/storage-blob';
import type { Settings } from '../config';
import { isStatus, type Storage } from '../storage/clients';
import { isSampleImage } from '../storage/images';
import { MAX_TRANSACTION_ENTITIES } from '../storage/table-writes';
import { JobIndex, ROW_KEY, partitionOf, rowOf } from './job-index';
import type { TaskRecord } from './store';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Blobs are deleted this many at a time (a page of deletes in flight, as purge does). */
const BLOB_BATCH = 100;

/** A table whose rows expire by age alone: adding one is one entry in AGED_TABLES. */
export interface AgedTable {
  /** What the report and the log call it. */
  readonly name: string;
  readonly table: (storage: Storage) => TableClient;
  /** Days its rows are kept; 0 keeps them forever. */
  readonly days: (settings: Settings) => number;
  /**
   * The column compared with the cutoff, server-side: `Timestamp` (the row's last write, by the storage
   * clock) or a column of ISO 8601 UTC text (compared as text, which orders such values by time).
   */
  readonly column: string;
  /** More of the server-side filter, e.g. `status ne 'running'`: rows it refuses are kept. */
  readonly where?: string;
}

export const AGED_TABLES: readonly AgedTable[] = [
  {
    name: 'dead letters',
    table: (storage) => storage.deadLetters,
    days: (settings) => settings.retentionDeadLettersDays,
    column: 'failed_at',
  },
  {
    name: 'metrics',
    table: (storage) => storage.metrics,
    // never shorter than the snapshot history the charts are promised
    days: (settings) =>
      settings.retentionMetricsDays && Math.max(settings.retentionMetricsDays, settings.metricsRetentionMinutes / 1440),
    column: 'Timestamp',
  },
  {
    // a job's completion callback, once it ended (delivered or given up), as long as the job's task records
    name: 'callbacks',
    table: (storage) => storage.callbacks,
    days: (settings) => settings.retentionTasksDays,
    column: 'Timestamp',
    where: "(state eq 'delivered' or state eq 'dead')",
  },
];

export interface SweepReport {
  readonly name: string;
  /** The table or container swept. */
  readonly store: string;
  /** null: kept forever (0 days), or deleted by the storage account's lifecycle rules. */
  readonly retention_days: number | null;
  readonly cutoff: string | null;
  readonly deleted: number;
  /**
   * Expired rows or blobs still there after this run (the budget ran out); the next run continues. For task
   * records of jobs not yet examined, an estimate: the task count of their index rows (or, found by a scan, their
   * ended rows older than the cutoff), some of which may belong to jobs still running.
   */
  readonly left: number;
  /** Why nothing was swept, when nothing was. */
  readonly skipped?: string;
  /** Task records only: jobs older than the cutoff kept because a task is still queued or processing. */
  readonly kept_running_jobs?: number;
  /** Task records only: result blobs deleted with their jobs' records. */
  readonly results_deleted?: number;
  /** For task records: rows of the job index removed with the last records of their job. */
  readonly job_index_rows_deleted?: number;
  /**
   * Task records only: how this run found the jobs to examine, the job index (the days before the cutoff) or,
   * every RETENTION_TASKS_SCAN_DAYS-th day, a scan of the task records (which also finds jobs without an index row).
   */
  readonly found_by?: 'job index' | 'task scan';
}

export interface RetentionReport {
  readonly now: string;
  readonly max_deletes: number;
  readonly deleted: number;
  readonly left: number;
  /** False when the budget ran out before every expired row and blob was deleted. */
  readonly complete: boolean;
  readonly sweeps: readonly SweepReport[];
}

/**
 * When a task's result expires: RETENTION_RESULTS_DAYS after the task succeeded (its blob was written just
 * before), or null when results are kept forever or the task has none. From then on the result is gone or
 * about to go (a lifecycle rule runs once a day), so the API answers 410 and hands out no link to it.
 */
export function resultExpiry(task: TaskRecord, settings: Settings): Date | null {
  if (settings.retentionResultsDays === 0 || task.status !== 'succeeded' || !task.completed_at) return null;
  return new Date(Date.parse(task.completed_at) + settings.retentionResultsDays * DAY_MS);
}

export const isResultExpired = (task: TaskRecord, settings: Settings, now = new Date()): boolean =>
  (resultExpiry(task, settings)?.getTime() ?? Infinity) <= now.getTime();

/** What one run may still delete. */
class Budget {
  constructor(private left: number) {}
  get remaining(): number {
    return this.left;
  }
  take(n: number): void {
    this.left -= n;
  }
}

const cutoffOf = (now: Date, days: number) => new Date(now.getTime() - days * DAY_MS);

const timeFilter = (column: string, cutoff: Date) =>
  column === 'Timestamp' ? odata`Timestamp lt ${cutoff}` : `${column} lt '${cutoff.toISOString()}'`;

/**
 * Deletes rows of one partition, up to 100 per transaction. A transaction is all or nothing: when one fails
 * (a row went meanwhile: another run, a purge) its rows are deleted one by one, a missing one skipped.
 */
async function deleteRows(table: TableClient, partitionKey: string, rowKeys: readonly string[]): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < rowKeys.length; i += MAX_TRANSACTION_ENTITIES) {
    const chunk = rowKeys.slice(i, i + MAX_TRANSACTION_ENTITIES);
    try {
      await table.submitTransaction(chunk.map((rowKey) => ['delete', { partitionKey, rowKey }]));
      deleted += chunk.length;
    } catch {
      for (const rowKey of chunk) {
        try {
          await table.deleteEntity(partitionKey, rowKey);
          deleted += 1;
        } catch (err) {
          if (!isStatus(err, 404)) throw err;
        }
      }
    }
  }
  return deleted;
}

/** Rows grouped by partition, in the order the query returned them. */
function byPartition(keys: readonly { partitionKey: string; rowKey: string }[]): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const { partitionKey, rowKey } of keys) groups.set(partitionKey, [...(groups.get(partitionKey) ?? []), rowKey]);
  return groups;
}

async function sweepAgedTable(
  storage: Storage,
  aged: AgedTable,
  settings: Settings,
  now: Date,
  budget: Budget,
): Promise<SweepReport> {
  const table = aged.table(storage);
  const days = aged.days(settings);
  const base = { name: aged.name, store: table.tableName };
  if (days === 0) return { ...base, retention_days: null, cutoff: null, deleted: 0, left: 0, skipped: 'kept forever' };
  const cutoff = cutoffOf(now, days);
  const filter = [timeFilter(aged.column, cutoff), aged.where].filter(Boolean).join(' and ');
  const keys: { partitionKey: string; rowKey: string }[] = [];
  let left = 0;
  const query = table.listEntities({ queryOptions: { filter, select: ['PartitionKey', 'RowKey'] } });
  for await (const e of query) {
    if (keys.length < budget.remaining) keys.push({ partitionKey: e.partitionKey!, rowKey: e.rowKey! });
    else left += 1;
  }
  let deleted = 0;
  for (const [partitionKey, rowKeys] of byPartition(keys)) deleted += await deleteRows(table, partitionKey, rowKeys);
  budget.take(keys.length);
  return { ...base, retention_days: days, cutoff: cutoff.toISOString(), deleted, left };
}

interface TaskRow {
  readonly rowKey: string;
  readonly status: string;
  readonly completed_at?: string;
  readonly created_at?: string;
  readonly output?: string;
}

/** Why a job's records stay: a task still open, or one that ended after the cutoff. */
function keepJob(rows: readonly TaskRow[], cutoff: string): 'running' | 'recent' | undefined {
  if (rows.some((r) => r.status === 'queued' || r.status === 'processing')) return 'running';
  if (rows.some((r) => !r.completed_at || r.completed_at >= cutoff)) return 'recent';
  return undefined;
}

async function readJob(table: TableClient, jobId: string): Promise<TaskRow[]> {
  const rows: TaskRow[] = [];
  const query = table.listEntities<TaskRow>({
    queryOptions: {
      filter: odata`PartitionKey eq ${jobId}`,
      select: ['RowKey', 'status', 'completed_at', 'created_at', 'output'],
    },
  });
  for await (const row of query) rows.push(row);
  return rows;
}

/** The first rows whose deletes (the row, and its result blob when it has one) fit in what is left of the budget. */
function withinBudget(rows: readonly TaskRow[], remaining: number): TaskRow[] {
  const taken: TaskRow[] = [];
  let cost = 0;
  for (const row of rows) {
    cost += resultBlobOf(row) === undefined ? 1 : 2;
    if (cost > remaining) break;
    taken.push(row);
  }
  return taken;
}

function resultBlobOf(row: TaskRow): string | undefined {
  if (!row.output) return undefined;
  try {
    const blob = (JSON.parse(row.output) as { blob?: unknown }).blob;
    return typeof blob === 'string' ? blob : undefined;
  } catch {
    return undefined;
  }
}

/** Deletes blobs, BLOB_BATCH at a time; a blob already gone is not counted. */
async function deleteBlobs(container: ContainerClient, names: readonly string[]): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < names.length; i += BLOB_BATCH) {
    const answers = await Promise.all(
      names
        .slice(i, i + BLOB_BATCH)
        .map((name) => container.getBlockBlobClient(name).deleteIfExists({ deleteSnapshots: 'include' })),
    );
    deleted += answers.filter((a) => a.succeeded).length;
  }
  return deleted;
}

/** A job the task sweep examines. */
interface Candidate {
  readonly jobId: string;
  /** Its row in the job index, when the walk found it there (the scan derives it from the tasks). */
  readonly indexRow?: { readonly partitionKey: string; readonly rowKey: string };
  /** The records counted as left when the budget is spent before the job is read. */
  readonly records: number;
}

/**
 * Jobs created before the cutoff, from the job index, keys and task count only: the rows of the cutoff day
 * before the cutoff, then every partition (day) before it, two range queries (one with `or` would not be
 * answered as a range). A job created at or after the cutoff cannot qualify (a task ends after it was created),
 * so the index rows and records of newer jobs are never read.
 */
async function* indexedJobs(storage: Storage, cutoff: Date): AsyncGenerator<Candidate> {
  const day = partitionOf(cutoff);
  const ranges = [
    odata`PartitionKey eq ${day} and RowKey ge ${rowOf(new Date(cutoff.getTime() - 1), '')}`,
    odata`PartitionKey gt ${day}`,
  ];
  for (const filter of ranges) {
    const query = storage.jobs.listEntities<{ total?: number }>({
      queryOptions: { filter, select: ['PartitionKey', 'RowKey', 'total'] },
    });
    for await (const row of query) {
      const key = ROW_KEY.exec(row.rowKey!);
      if (!key) continue;
      yield {
        jobId: key[2],
        indexRow: { partitionKey: row.partitionKey!, rowKey: row.rowKey! },
        records: Number(row.total) || 0,
      };
    }
  }
}

/**
 * Jobs with a task that ended before the cutoff, from a scan of Table `tasks` (a server-side filter, keys only;
 * in Azure it reads every record): the way to find jobs without an index row, every RETENTION_TASKS_SCAN_DAYS.
 * Rows come a partition (job) at a time, so a job is yielded once, when its last such row has been seen.
 */
async function* scannedJobs(storage: Storage, cutoff: Date): AsyncGenerator<Candidate> {
  const filter = `(status eq 'succeeded' or status eq 'failed') and completed_at lt '${cutoff.toISOString()}'`;
  const query = storage.tasks.listEntities({ queryOptions: { filter, select: ['PartitionKey', 'RowKey'] } });
  let current: { jobId: string; records: number } | undefined;
  for await (const row of query) {
    if (current && current.jobId === row.partitionKey) {
      current.records += 1;
      continue;
    }
    if (current) yield current;
    current = { jobId: row.partitionKey!, records: 1 };
  }
  if (current) yield current;
}

/** Whether this run finds task records by a scan (every RETENTION_TASKS_SCAN_DAYS-th UTC day) or the job index. */
export const scansTasks = (settings: Settings, now: Date): boolean =>
  settings.retentionTasksScanDays > 0 && Math.floor(now.getTime() / DAY_MS) % settings.retentionTasksScanDays === 0;

interface JobOutcome {
  readonly kept?: 'running' | 'recent';
  readonly deleted: number;
  readonly results: number;
  readonly left: number;
  readonly indexRow: boolean;
  /** Nothing of the job fit in what is left of the budget. */
  readonly spent: boolean;
}

/**
 * One job: read whole (one partition query) and removed only when every task in it ended before the cutoff.
 * Its results go first, then its records, within the budget: a job larger than what is left of it is removed
 * in part, and the next run removes the rest (what is left is still ended and old, so it still qualifies).
 * Once the whole job is gone its index row goes too (a row without tasks is never listed, but would stay in
 * every page's read); so does the row of a job without any task left (a run stopped between the two).
 */
async function sweepJob(storage: Storage, job: Candidate, cutoff: string, budget: Budget): Promise<JobOutcome> {
  const none = { deleted: 0, results: 0, left: 0, indexRow: false, spent: false };
  const rows = await readJob(storage.tasks, job.jobId);
  const kept = rows.length > 0 ? keepJob(rows, cutoff) : undefined;
  if (kept) return { ...none, kept };
  const chunk = withinBudget(rows, budget.remaining);
  if (rows.length > 0 && chunk.length === 0) return { ...none, left: rows.length, spent: true };
  const results = await deleteBlobs(
    storage.processed,
    chunk.map(resultBlobOf).filter((b): b is string => b !== undefined),
  );
  const deleted = await deleteRows(
    storage.tasks,
    job.jobId,
    chunk.map((r) => r.rowKey),
  );
  budget.take(chunk.length + chunk.filter((r) => resultBlobOf(r) !== undefined).length);
  // the row is keyed by the job's creation time, which every task has
  const createdAt = rows[0]?.created_at;
  const indexRow =
    job.indexRow ??
    (createdAt
      ? { partitionKey: partitionOf(new Date(createdAt)), rowKey: rowOf(new Date(createdAt), job.jobId) }
      : undefined);
  const whole = chunk.length === rows.length;
  const removed = whole && indexRow !== undefined && (await new JobIndex(storage.jobs).remove(indexRow));
  return { deleted, results, left: rows.length - chunk.length, indexRow: removed, spent: false };
}

/**
 * Task records of ended jobs. The jobs created before the cutoff come from the job index (`indexedJobs`);
 * every RETENTION_TASKS_SCAN_DAYS-th day from a scan of the task records instead (`scannedJobs`), which also
 * finds the jobs the index does not have. Each is examined by `sweepJob` until the budget is spent; the jobs
 * after that are only counted.
 */
async function sweepTasks(storage: Storage, settings: Settings, now: Date, budget: Budget): Promise<SweepReport> {
  const days = settings.retentionTasksDays;
  const base = { name: 'task records', store: storage.tasks.tableName };
  if (days === 0) return { ...base, retention_days: null, cutoff: null, deleted: 0, left: 0, skipped: 'kept forever' };
  const cutoff = cutoffOf(now, days);
  const scan = scansTasks(settings, now);
  const candidates = scan ? scannedJobs(storage, cutoff) : indexedJobs(storage, cutoff);
  let deleted = 0;
  let results = 0;
  let left = 0;
  let running = 0;
  let indexRows = 0;
  let spent = false;
  for await (const job of candidates) {
    // the budget is spent: count what is left without reading more jobs
    if (spent || budget.remaining <= 0) {
      left += job.records;
      continue;
    }
    const outcome = await sweepJob(storage, job, cutoff.toISOString(), budget);
    if (outcome.kept === 'running') running += 1;
    deleted += outcome.deleted;
    results += outcome.results;
    left += outcome.left;
    if (outcome.indexRow) indexRows += 1;
    spent = outcome.spent;
  }
  return {
    ...base,
    retention_days: days,
    cutoff: cutoff.toISOString(),
    found_by: scan ? 'task scan' : 'job index',
    deleted,
    left,
    kept_running_jobs: running,
    results_deleted: results,
    job_index_rows_deleted: indexRows,
  };
}

async function sweepContainer(
  name: string,
  container: ContainerClient,
  days: number,
  settings: Settings,
  now: Date,
  budget: Budget,
  keep: (blob: { metadata?: Record<string, string> }) => boolean = () => false,
): Promise<SweepReport> {
  const base = { name, store: container.containerName };
  if (days === 0) return { ...base, retention_days: null, cutoff: null, deleted: 0, left: 0, skipped: 'kept forever' };
  if (settings.retentionBlobs === 'lifecycle')
    return {
      ...base,
      retention_days: null,
      cutoff: null,
      deleted: 0,
      left: 0,
      skipped: "RETENTION_BLOBS=lifecycle: the storage account's lifecycle management rules delete them",
    };
  const cutoff = cutoffOf(now, days);
  const expired: string[] = [];
  let left = 0;
  for await (const blob of container.listBlobsFlat({ includeMetadata: true })) {
    const modified = blob.properties.lastModified;
    if (!modified || modified >= cutoff || keep(blob)) continue;
    if (expired.length < budget.remaining) expired.push(blob.name);
    else left += 1;
  }
  const deleted = await deleteBlobs(container, expired);
  budget.take(expired.length);
  return { ...base, retention_days: days, cutoff: cutoff.toISOString(), deleted, left };
}

/**
 * One retention run at `now`: task records (with their results) first, then results and uploads by age, then
 * the aged tables; each sweep takes from one budget of `settings.retentionMaxDeletes` deletes.
 */
export async function applyRetention(storage: Storage, settings: Settings, now = new Date()): Promise<RetentionReport> {
  await storage.ensureResources();
  const budget = new Budget(settings.retentionMaxDeletes);
  const sweeps: SweepReport[] = [];
  sweeps.push(await sweepTasks(storage, settings, now, budget));
  sweeps.push(await sweepContainer('results', storage.processed, settings.retentionResultsDays, settings, now, budget));
  sweeps.push(
    await sweepContainer(
      'uploads',
      storage.images,
      settings.retentionUploadsDays,
      settings,
      now,
      budget,
      isSampleImage,
    ),
  );
  for (const aged of AGED_TABLES) sweeps.push(await sweepAgedTable(storage, aged, settings, now, budget));
  const deleted = sweeps.reduce((n, s) => n + s.deleted + (s.results_deleted ?? 0), 0);
  const left = sweeps.reduce((n, s) => n + s.left, 0);
  return {
    now: now.toISOString(),
    max_deletes: settings.retentionMaxDeletes,
    deleted,
    left,
    complete: left === 0,
    sweeps,
  };
}

/** One log line: what each sweep deleted and what it left for the next run. */
export function retentionSummary(report: RetentionReport): string {
  const parts = report.sweeps.map((s) => {
    if (s.skipped) return `${s.name}: ${s.skipped}`;
    const results = s.results_deleted ? ` (+${s.results_deleted} results)` : '';
    const running = s.kept_running_jobs ? `, ${s.kept_running_jobs} old jobs kept (still running)` : '';
    const scan = s.found_by === 'task scan' ? ' (found by a scan of all task records)' : '';
    return `${s.name}${scan}: ${s.deleted} deleted${results}${running}, ${s.left} left (older than ${s.cutoff})`;
  });
  const state = report.complete
    ? 'nothing expired is left'
    : `${report.left} expired left for the next run (RETENTION_MAX_DELETES ${report.max_deletes} reached)`;
  return `retention: ${report.deleted} deleted, ${state}; ${parts.join('; ')}`;
}
