/**
 * What an operator does with jobs: list them newest first (from the job index, see job-index.ts),
 * retry the failed tasks of one, delete one. None of it touches the worker path.
 */
import { AppError } from '../errors';
import type { Storage } from '../storage/clients';
import { isStatus } from '../storage/clients';
import { enqueue } from '../storage/queue';
import { countStatuses, type JobStatus } from './jobs';
import { JobIndex, encodeCursor, type Cursor, type JobEntry, type StoredJob } from './job-index';
import { deleteCallback, reopenCallback } from './callbacks';
import { DeadLetterStore } from './dead-letters';
import { buildTaskMessage } from './message';
import { TaskStore, type TaskRecord, type TaskStatus } from './store';

/** At most this many index rows are looked at for one page: a page filtered by status may hold fewer items. */
export const SCAN_PER_PAGE = 100;
/** How many jobs' tasks are read at once while a page is built. */
const READ_CONCURRENCY = 10;

export interface ListQuery {
  readonly status?: JobStatus;
  readonly since?: Date;
  readonly limit: number;
  readonly after?: Cursor;
}

export interface ListedJob extends Omit<JobEntry, 'final'> {
  readonly status: JobStatus;
  readonly counts: Readonly<Record<TaskStatus, number>>;
}

export interface JobPage {
  readonly jobs: readonly ListedJob[];
  /** Where the next page starts, or undefined when the walk is over. */
  readonly continuation?: string;
}

/** The statuses of a job's tasks: one query of its partition, the status column only. */
async function taskStatuses(storage: Storage, jobId: string): Promise<TaskStatus[]> {
  const statuses: TaskStatus[] = [];
  const query = storage.tasks.listEntities<{ status: TaskStatus }>({
    queryOptions: { filter: `PartitionKey eq '${jobId.replace(/'/g, "''")}'`, select: ['status'] },
  });
  for await (const e of query) statuses.push(e.status);
  return statuses;
}

/**
 * A row's job as listed: its cached final status (no read), or its tasks' statuses (caching a final one).
 * Undefined when it has no tasks (deleted, or its creation failed half way): such a row is not a job.
 */
async function listed(storage: Storage, row: StoredJob): Promise<ListedJob | undefined> {
  const { final, ...entry } = row.entry;
  if (final) return asListed(entry, final.status, final.counts, entry.total);
  const statuses = await taskStatuses(storage, entry.job_id);
  if (statuses.length === 0) return undefined;
  const { status, counts } = countStatuses(statuses);
  await new JobIndex(storage.jobs).cacheFinal(row, status, counts);
  return asListed(entry, status, counts, statuses.length);
}

/** A listed job, its fields in the order a reader looks for them. */
const asListed = (
  entry: Omit<JobEntry, 'final'>,
  status: JobStatus,
  counts: ListedJob['counts'],
  total: number,
): ListedJob => ({
  job_id: entry.job_id,
  status,
  created_at: entry.created_at,
  total,
  counts,
  capability: entry.capability,
  images: entry.images,
  filters: entry.filters,
  output_format: entry.output_format,
  retries: entry.retries,
});

/**
 * One page of jobs, newest first. Without a status filter, the next `limit` index rows; with one, up to
 * SCAN_PER_PAGE rows are looked at and the page holds those that match (maybe fewer than `limit`, maybe
 * none) and a continuation when rows remain.
 */
export async function listJobs(storage: Storage, query: ListQuery): Promise<JobPage> {
  const index = new JobIndex(storage.jobs);
  const scan = query.status ? SCAN_PER_PAGE : query.limit;
  const { rows, more } = await index.page(query.after, scan, query.since);
  const jobs: ListedJob[] = [];
  let last: StoredJob | undefined;
  for (let i = 0; i < rows.length && jobs.length < query.limit; i += READ_CONCURRENCY) {
    const chunk = rows.slice(i, i + READ_CONCURRENCY);
    const found = await Promise.all(chunk.map((row) => listed(storage, row)));
    for (const [j, job] of found.entries()) {
      if (jobs.length === query.limit) break;
      last = chunk[j];
      if (job && (!query.status || job.status === query.status)) jobs.push(job);
    }
  }
  const remaining = more || (last !== undefined && last !== rows.at(-1));
  return {
    jobs,
    ...(remaining && last ? { continuation: encodeCursor({ pk: last.partitionKey, rk: last.rowKey }) } : {}),
  };
}

/** The index row of a job whose tasks are `tasks` (their created_at is the row's time). */
const rowOfTasks = (storage: Storage, jobId: string, tasks: readonly TaskRecord[]) =>
  tasks.length > 0 ? new JobIndex(storage.jobs).get(jobId, tasks[0].created_at) : Promise.resolve(undefined);

export interface RetryOutcome {
  readonly job_id: string;
  /** The failed tasks put back on their queue, as a new attempt each. */
  readonly requeued: readonly string[];
  /** How many of the job's tasks had failed when the retry looked. */
  readonly failed_before: number;
}

/**
 * Puts a job's failed tasks back to queued (TaskStore.requeue, guarded by ETag) and their messages back
 * on their queues, each message carrying the record's new ETag and attempt count, so the worker claims
 * it without reading it and the attempts count on. A task that changed meanwhile (another retry took it)
 * is left alone. Undefined when the job has no tasks. Then the job's cached final status goes, and its
 * completion callback is re-armed (callbacks.ts reopenCallback).
 */
export async function retryJob(storage: Storage, jobId: string): Promise<RetryOutcome | undefined> {
  const store = new TaskStore(storage.tasks);
  const tasks = await store.listJob(jobId);
  if (tasks.length === 0) return undefined;
  const failed = tasks.filter((t) => t.status === 'failed');
  const outcomes = await Promise.all(
    failed.map(async (task) => {
      const back = await store.requeue(task.task_id);
      if (!back?.changed) return undefined;
      const { record, etag } = back.task;
      const spec = { filters: record.filters, encoding: record.output_spec };
      // submitted_at is the record's created_at, as in createJob's messages: the worker presumes the record from it
      const message = buildTaskMessage(record, spec, new Date(record.created_at), etag, record.attempts);
      try {
        await enqueue(storage.queue(record.capability), message);
        // the task's dead letter (a run that gave up) is replayed by this retry: it leaves the list, as a
        // dead-letter requeue removes it, instead of staying there with a Requeue that answers 409
        await new DeadLetterStore(storage.deadLetters).discard(record.capability, record.task_id);
        return { task_id: record.task_id };
      } catch (err) {
        await store.fail(record.task_id, { type: 'worker_failure', reason: 'enqueue_failed', error: String(err) });
        return { task_id: record.task_id, error: err };
      }
    }),
  );
  const done = outcomes.filter((o) => o !== undefined);
  if (done.length > 0) {
    const row = await rowOfTasks(storage, jobId, tasks);
    if (row) await new JobIndex(storage.jobs).reopen(row);
    // the job runs again: its completion callback, if any, is sent again for the state it ends in
    await reopenCallback(storage, jobId);
  }
  const lost = done.filter((o) => o.error !== undefined);
  if (lost.length > 0)
    throw new Error(`could not enqueue ${lost.length} retried task(s) of job ${jobId}: ${String(lost[0].error)}`);
  return { job_id: jobId, requeued: done.map((o) => o.task_id), failed_before: failed.length };
}

/** Deletes the dead letters that name a task of the job, in each capability its tasks ran on. */
async function deleteDeadLetters(storage: Storage, jobId: string, tasks: readonly TaskRecord[]): Promise<number> {
  const letters = new DeadLetterStore(storage.deadLetters);
  let deleted = 0;
  for (const capability of new Set(tasks.map((t) => t.capability)))
    for (const id of await letters.idsOfJob(capability, jobId)) if (await letters.discard(capability, id)) deleted += 1;
  return deleted;
}

export interface DeleteReport {
  readonly job_id: string;
  readonly deleted: {
    readonly task_records: number;
    readonly results: number;
    readonly job_record: boolean;
    /** Dead letters of the job's tasks (nothing left to replay them into). */
    readonly dead_letters: number;
    /** The job's completion callback registration (a pending one is never sent). */
    readonly callback: boolean;
  };
  readonly kept: readonly string[];
}

/** A table transaction holds at most 100 operations of one partition. */
const BATCH = 100;

async function deleteTaskRecords(storage: Storage, jobId: string, tasks: readonly TaskRecord[]): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < tasks.length; i += BATCH) {
    const chunk = tasks.slice(i, i + BATCH);
    try {
      await storage.tasks.submitTransaction(
        chunk.map((t) => ['delete', { partitionKey: jobId, rowKey: t.task_id }] as const),
      );
      deleted += chunk.length;
    } catch {
      // one record already gone fails the whole transaction: delete them one by one
      for (const t of chunk) {
        try {
          await storage.tasks.deleteEntity(jobId, t.task_id);
          deleted += 1;
        } catch (err) {
          if (!isStatus(err, 404)) throw err;
        }
      }
    }
  }
  return deleted;
}

/** The results of a job's tasks: `processed` blobs named `<task id>.<ext>` (storage/images.ts writeResult). */
async function deleteResults(storage: Storage, jobId: string): Promise<number> {
  let deleted = 0;
  for await (const page of storage.processed.listBlobsFlat({ prefix: `${jobId}_` }).byPage({ maxPageSize: BATCH })) {
    const gone = await Promise.all(
      page.segment.blobItems.map((blob) =>
        storage.processed.deleteBlob(blob.name, { deleteSnapshots: 'include' }).then(
          () => true,
          (err: unknown) => {
            if (!isStatus(err, 404)) throw err;
            return false;
          },
        ),
      ),
    );
    deleted += gone.filter(Boolean).length;
  }
  return deleted;
}

/**
 * Deletes a job: its index row first (so it leaves the list at once), then its results, the dead letters of
 * its tasks and its callback registration, then its task records (last, so an interrupted delete is finished
 * by asking again: the job is found by its tasks).
 * Source images are kept: other jobs may read them. A job with tasks still queued or processing is
 * refused unless `force`: their messages would come back to tasks that no longer exist and end as dead
 * letters. Undefined when there is no such job.
 */
export async function deleteJob(
  storage: Storage,
  jobId: string,
  options: { force?: boolean } = {},
): Promise<DeleteReport | undefined> {
  const tasks = await new TaskStore(storage.tasks).listJob(jobId);
  if (tasks.length === 0) return undefined;
  const open = tasks.filter((t) => t.status === 'queued' || t.status === 'processing');
  if (open.length > 0 && !options.force) {
    throw new AppError(
      'job_active',
      `Job ${jobId} has ${open.length} task(s) still queued or processing; wait until it is done, or ` +
        'delete it with ?force=true (their messages then end as dead letters: no task to run)',
    );
  }
  const row = await rowOfTasks(storage, jobId, tasks);
  const jobRecord = row ? await new JobIndex(storage.jobs).remove(row) : false;
  const results = await deleteResults(storage, jobId);
  const deadLetters = await deleteDeadLetters(storage, jobId, tasks);
  const callback = await deleteCallback(storage, jobId);
  const records = await deleteTaskRecords(storage, jobId, tasks);
  return {
    job_id: jobId,
    deleted: { task_records: records, results, job_record: jobRecord, dead_letters: deadLetters, callback },
    kept: [`source images (container ${storage.names.images}): other jobs may use them`],
  };
}
