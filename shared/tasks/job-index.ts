/**
 * The job index: Table `jobs`, one row per job, written by createJob, so listing jobs newest first is a
 * range read of this small table instead of a scan of every task record.
 *
 * Layout. PartitionKey = the job's UTC day, inverted (`999999 - days since 1970`, six digits), so a
 * partition holds one day's jobs (the only hot partition is today's) and newer days sort first.
 * RowKey = the creation time in ms, inverted (`999999999999999 - ms`, fifteen digits), then `_` and the
 * job id, so within a day newer jobs sort first and two jobs of one millisecond still have distinct
 * keys. The table service answers a query in (PartitionKey, RowKey) order, so one query over the key
 * range walks the days newest first and the jobs of each day newest first: a page is one range read
 * that starts where the last one stopped (the continuation names that row). `since` ends the walk at
 * the first row older than it. Jobs created before the index existed have no row and are not listed.
 * Retention walks the same keys: the partitions at or before its cutoff day are the jobs it examines (a job
 * without a row is found by its periodic scan of the task records instead).
 *
 * A job's status comes from its tasks (summarizeJob), read when the job is listed: one query of the
 * job's partition of `tasks`. Workers never write here (no per-task cost). Once a read finds every
 * task of a job succeeded, that status and the counts are cached on its row (written once, guarded by
 * the row's ETag, which the read took before it read the tasks), so such a job costs nothing more to
 * list. Only `succeeded` is cached because only it is final for good: a failed task goes back to work
 * through a retry, a dead-letter requeue or a redelivered message (none of which pass through here),
 * so a failed or partially failed job is read from its tasks every time it is listed. A retry rewrites
 * the row (it counts the retry, under the row's ETag), which changes the ETag.
 */
import type { TableClient } from '@azure/data-tables';
import { ValidationError } from '../errors';
import { isStatus } from '../storage/clients';
import { fieldProblem, isPlainObject } from '../validation';
import type { JobStatus } from './jobs';
import type { TaskStatus } from './store';

export const JOB_STATUSES: readonly JobStatus[] = ['queued', 'processing', 'succeeded', 'failed', 'partially_failed'];
/** The one status cached on a row: no transition leaves `succeeded`, so every task of such a job stays so. */
const CACHED: ReadonlySet<JobStatus> = new Set(['succeeded']);

const DAY_MS = 86_400_000;
/** How many times a retry's count reads the row again after losing its write to another. */
const REOPEN_RETRIES = 5;
const MAX_DAY = 999_999;
const MAX_MS = 999_999_999_999_999;
export const PARTITION_KEY = /^\d{6}$/;
export const ROW_KEY = /^(\d{15})_([0-9a-f-]{36})$/;

/** The partition of jobs created at `at`: its UTC day, inverted, so newer days sort first. */
export const partitionOf = (at: Date): string => String(MAX_DAY - Math.floor(at.getTime() / DAY_MS)).padStart(6, '0');

/** The row of a job created at `at`: the time inverted, so newer jobs sort first, then the job id. */
export const rowOf = (at: Date, jobId: string): string => `${String(MAX_MS - at.getTime()).padStart(15, '0')}_${jobId}`;

/** When the job of a row key was created. */
export const createdAtOf = (rowKey: string): Date => new Date(MAX_MS - Number(rowKey.slice(0, 15)));

/** What the index keeps of a job: enough to list it without reading its tasks. */
export interface JobEntry {
  readonly job_id: string;
  readonly created_at: string;
  readonly total: number;
  readonly capability: string;
  /** How many distinct images the tasks read. */
  readonly images: number;
  /** The pipeline's filter names, in order. */
  readonly filters: readonly string[];
  readonly output_format: string;
  /** The status and counts, once a read found every task succeeded (cached: it cannot change). */
  readonly final?: { readonly status: JobStatus; readonly counts: Readonly<Record<TaskStatus, number>> };
  /** How many times the job was retried. */
  readonly retries: number;
}

type JobEntity = {
  partitionKey: string;
  rowKey: string;
  job_id: string;
  created_at: string;
  total: number;
  capability: string;
  images: number;
  filters: string;
  output_format: string;
  final_status?: string;
  final_counts?: string;
  retries?: number;
};

export interface StoredJob {
  readonly entry: JobEntry;
  readonly etag: string;
  readonly partitionKey: string;
  readonly rowKey: string;
}

function toEntry(e: JobEntity): JobEntry {
  const status = e.final_status as JobStatus | undefined;
  return {
    job_id: e.job_id,
    created_at: e.created_at,
    total: e.total,
    capability: e.capability,
    images: e.images,
    filters: e.filters ? e.filters.split(',') : [],
    output_format: e.output_format,
    ...(status && CACHED.has(status) && e.final_counts
      ? { final: { status, counts: JSON.parse(e.final_counts) as Record<TaskStatus, number> } }
      : {}),
    retries: e.retries ?? 0,
  };
}

const stored = (e: JobEntity & { etag: string }): StoredJob => ({
  entry: toEntry(e),
  etag: e.etag,
  partitionKey: e.partitionKey,
  rowKey: e.rowKey,
});

/** Where a page resumes: the last index row the previous page looked at (not necessarily one it listed). */
export interface Cursor {
  readonly pk: string;
  readonly rk: string;
}

const TOKEN_VERSION = 1;
const MAX_TOKEN_CHARS = 512;
const TOKEN_EXPECTED = 'the continuation token of a previous page (its `continuation`, also in its `next_url`)';

/** The opaque continuation token of a cursor: base64url of `{"v":1,"pk":…,"rk":…}`. */
export const encodeCursor = (cursor: Cursor): string =>
  Buffer.from(JSON.stringify({ v: TOKEN_VERSION, pk: cursor.pk, rk: cursor.rk }), 'utf8').toString('base64url');

/** The cursor a token names; a ValidationError naming what a token looks like for anything else. */
export function decodeCursor(token: string, field = 'query.continuation'): Cursor {
  const refuse = (why: string) => {
    const problem = fieldProblem(field, TOKEN_EXPECTED, token);
    throw new ValidationError([{ ...problem, message: `${problem.message} (${why})` }]);
  };
  if (token.length > MAX_TOKEN_CHARS) refuse(`longer than ${MAX_TOKEN_CHARS} characters`);
  if (!/^[A-Za-z0-9_-]+$/.test(token)) refuse('not base64url');
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    return refuse('not base64url-encoded JSON');
  }
  if (!isPlainObject(value)) return refuse('not a JSON object');
  const { v, pk, rk } = value;
  if (v !== TOKEN_VERSION) return refuse(`not version ${TOKEN_VERSION}`);
  if (typeof pk !== 'string' || !PARTITION_KEY.test(pk) || typeof rk !== 'string' || !ROW_KEY.test(rk))
    return refuse('it names no position in the job index');
  return { pk, rk };
}

const quoted = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** The query of the rows after `after` (all rows without it), in key order: newest first. */
export function rangeFilter(after: Cursor | undefined): string | undefined {
  if (!after) return undefined;
  return `(PartitionKey eq ${quoted(after.pk)} and RowKey gt ${quoted(after.rk)}) or PartitionKey gt ${quoted(after.pk)}`;
}

/** A job's row as the table stores it: what the job was created with, and (after a retry) its retries. */
function entityOf(
  keys: { partitionKey: string; rowKey: string },
  entry: Omit<JobEntry, 'final' | 'retries'>,
  extra: { retries?: number } = {},
): JobEntity {
  return {
    partitionKey: keys.partitionKey,
    rowKey: keys.rowKey,
    job_id: entry.job_id,
    created_at: entry.created_at,
    total: entry.total,
    capability: entry.capability,
    images: entry.images,
    filters: entry.filters.join(','),
    output_format: entry.output_format,
    ...extra,
  };
}

export class JobIndex {
  constructor(private readonly table: TableClient) {}

  /** Writes the row of a new job (created_at as the tasks have it). */
  async add(entry: Omit<JobEntry, 'final' | 'retries'>): Promise<void> {
    const at = new Date(entry.created_at);
    await this.table.createEntity(entityOf({ partitionKey: partitionOf(at), rowKey: rowOf(at, entry.job_id) }, entry));
  }

  /** The row of a job created at `createdAt` (the tasks' created_at), if it has one. */
  async get(jobId: string, createdAt: string): Promise<StoredJob | undefined> {
    const at = new Date(createdAt);
    if (Number.isNaN(at.getTime())) return undefined;
    try {
      return stored(await this.table.getEntity<JobEntity>(partitionOf(at), rowOf(at, jobId)));
    } catch (err) {
      if (isStatus(err, 404)) return undefined;
      throw err;
    }
  }

  /**
   * Up to `max` rows after `after`, newest first, and whether more follow. A row older than `since`
   * ends the walk (nothing after it can be newer).
   */
  async page(after: Cursor | undefined, max: number, since?: Date): Promise<{ rows: StoredJob[]; more: boolean }> {
    const rows: StoredJob[] = [];
    const filter = rangeFilter(after);
    const pages = this.table
      .listEntities<JobEntity>(filter ? { queryOptions: { filter } } : {})
      .byPage({ maxPageSize: Math.min(1000, max + 1) });
    for await (const page of pages) {
      for (const entity of page) {
        if (since && createdAtOf(entity.rowKey) < since) return { rows, more: false };
        if (rows.length === max) return { rows, more: true };
        rows.push(stored(entity));
      }
    }
    return { rows, more: false };
  }

  /**
   * Caches a status that cannot change any more (`succeeded`) on the row, once, only if the row is still
   * the version `row` read before the tasks were read (If-Match); losing to another write is fine.
   */
  async cacheFinal(row: StoredJob, status: JobStatus, counts: Readonly<Record<TaskStatus, number>>): Promise<void> {
    if (!CACHED.has(status) || row.entry.final) return;
    const entity = {
      partitionKey: row.partitionKey,
      rowKey: row.rowKey,
      final_status: status,
      final_counts: JSON.stringify(counts),
    };
    try {
      await this.table.updateEntity(entity, 'Merge', { etag: row.etag });
    } catch (err) {
      if (!isStatus(err, 412) && !isStatus(err, 404)) throw err;
    }
  }

  /**
   * After a retry: the cached status goes and the retry is counted. Guarded by the row's ETag (it changes the
   * ETag, so a stale cacheFinal loses): two retries at once both count, since the one that loses reads the row
   * again and counts on from the other's.
   */
  async reopen(row: StoredJob): Promise<void> {
    let current: StoredJob | undefined = row;
    for (let i = 0; i < REOPEN_RETRIES && current; i++) {
      const { entry } = current;
      const entity = entityOf(current, entry, { retries: entry.retries + 1 });
      try {
        await this.table.updateEntity(entity, 'Replace', { etag: current.etag });
        return;
      } catch (err) {
        if (isStatus(err, 404)) return; // deleted meanwhile: nothing to reopen
        if (!isStatus(err, 412)) throw err;
      }
      current = await this.get(entry.job_id, entry.created_at);
    }
    if (current) throw new Error(`job index row of ${row.entry.job_id} kept changing while a retry was counted`);
  }

  /** Removes a job's row; false when it had none. */
  async remove(row: { partitionKey: string; rowKey: string }): Promise<boolean> {
    try {
      await this.table.deleteEntity(row.partitionKey, row.rowKey);
      return true;
    } catch (err) {
      if (isStatus(err, 404)) return false;
      throw err;
    }
  }
}
