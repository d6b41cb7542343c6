/**
 * Retention: what the app stores expires after the RETENTION_*_DAYS settings (0 keeps it forever), applied by
 * the daily retention timer. One run is idempotent (it deletes only what is expired at `now`, and deleting what
 * is already gone changes nothing) and bounded: at most RETENTION_MAX_DELETES rows and blobs, the rest left for
 * the next run, and the report says how many were left.
 *
 * - Task records go a job at a time: a job whose tasks all ended (none queued or processing) and whose last
 *   task ended before the cutoff. Its result blobs are deleted first, then its records (entity-group
 *   transactions of up to 100 rows of its partition), so a record never points at a result that is gone
 *   because of this sweep. A job with a task still queued or processing is never touched.
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
import { JobIndex, partitionOf, rowOf } from './job-index';
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
   * records, the ended rows older than the cutoff in jobs not yet examined: at most what the next runs delete
   * (some may belong to jobs still running).
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

/**
 * Task records of ended jobs. Candidates come from a server-side filter (ended tasks that ended before the
 * cutoff, keys only); each candidate job is then read whole (one partition query) and removed only when every
 * task in it ended before the cutoff. Its results go first, then its records, within the budget: a job larger
 * than what is left of it is removed in part, and the next run removes the rest (what is left is still ended
 * and old, so it still qualifies).
 */
async function sweepTasks(storage: Storage, settings: Settings, now: Date, budget: Budget): Promise<SweepReport> {
  const days = settings.retentionTasksDays;
  const base = { name: 'task records', store: storage.tasks.tableName };
  if (days === 0) return { ...base, retention_days: null, cutoff: null, deleted: 0, left: 0, skipped: 'kept forever' };
  const cutoff = cutoffOf(now, days).toISOString();
  const filter = `(status eq 'succeeded' or status eq 'failed') and completed_at lt '${cutoff}'`;
  const candidates = storage.tasks.listEntities({ queryOptions: { filter, select: ['PartitionKey', 'RowKey'] } });
  let deleted = 0;
  let results = 0;
  let left = 0;
  let running = 0;
  let indexRows = 0;
  let previous: string | undefined;
  for await (const candidate of candidates) {
    const jobId = candidate.partitionKey!;
    if (jobId === previous) continue;
    // the budget is spent: count what is left without reading more jobs (ended rows older than the cutoff)
    if (budget.remaining <= 0) {
      left += 1;
      continue;
    }
    previous = jobId;
    const rows = await readJob(storage.tasks, jobId);
    const keep = keepJob(rows, cutoff);
    if (keep) {
      if (keep === 'running') running += 1;
      continue;
    }
    const chunk = withinBudget(rows, budget.remaining);
    const removedResults = await deleteBlobs(
      storage.processed,
      chunk.map(resultBlobOf).filter((b): b is string => b !== undefined),
    );
    const removedRows = await deleteRows(
      storage.tasks,
      jobId,
      chunk.map((r) => r.rowKey),
    );
    budget.take(chunk.length + chunk.filter((r) => resultBlobOf(r) !== undefined).length);
    // the whole job is gone: its row in the job index goes too (a row without tasks is never listed, but
    // would stay in every page's scan); the row is keyed by the job's creation time, which every task has
    const createdAt = rows[0].created_at;
    if (chunk.length === rows.length && createdAt) {
      const at = new Date(createdAt);
      if (await new JobIndex(storage.jobs).remove({ partitionKey: partitionOf(at), rowKey: rowOf(at, jobId) }))
        indexRows += 1;
    }
    results += removedResults;
    deleted += removedRows;
    left += rows.length - chunk.length;
  }
  return {
    ...base,
    retention_days: days,
    cutoff,
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
    return `${s.name}: ${s.deleted} deleted${results}${running}, ${s.left} left (older than ${s.cutoff})`;
  });
  const state = report.complete
    ? 'nothing expired is left'
    : `${report.left} expired left for the next run (RETENTION_MAX_DELETES ${report.max_deletes} reached)`;
  return `retention: ${report.deleted} deleted, ${state}; ${parts.join('; ')}`;
}
