/**
 * Task records in Table storage: partition = job, row = task, so a task is a point read and a
 * job is one partition query. A task changes status only through the named transitions below
 * (start, succeed, fail, requeue), each with its guard in one place, and every write is guarded
 * by the entity's ETag. A transition returns the record with its new ETag, so the next one on the
 * normal path writes without reading first, and says whether it changed the record: only a
 * transition that happened may be counted. `create` returns each record's ETag too, and a task
 * message carries it, so the first claim of a task is written without reading the record at all.
 * A transition writes only the columns it changes (Merge), so a record presumed from a message never
 * writes back a column it does not own; it replaces the whole entity only to remove a column.
 *
 * A task is claimed once. `start` takes a task only when nobody holds a live claim on it: a task
 * `processing` under another delivery stands unless its claim is older than the longest an
 * invocation can run (CLAIM_STALE_AFTER_MS) or the caller's liveness check says its worker is gone.
 * The claim is the worker id and the attempt number `start` wrote; `succeed` and `fail` from a
 * worker write only while that claim still stands, so a delivery that lost its claim changes nothing.
 */
import type { TableClient, TableEntityResult, TransactionAction } from '@azure/data-tables';
import type { CapabilityName } from '../capabilities';
import type { FilterSpec } from '../imaging/spec';
import type { Encoding } from '../imaging/output';
import { isStatus } from '../storage/clients';
import { updateIfMatch } from '../storage/table-writes';
import type { TaskResult } from '../storage/images';
import { jobIdOf } from './message';

export type TaskStatus = 'queued' | 'processing' | 'succeeded' | 'failed';
export type FailureType = 'job_failure' | 'worker_failure';

export interface TaskRecord {
  readonly task_id: string;
  readonly job_id: string;
  readonly status: TaskStatus;
  readonly image: string;
  readonly filters: readonly FilterSpec[];
  /** The encoding the job asked for (its `output`). */
  readonly output_spec: Encoding;
  readonly capability: CapabilityName;
  readonly queue: string;
  readonly attempts: number;
  readonly worker_id: string | null;
  readonly created_at: string;
  readonly started_at: string | null;
  readonly completed_at: string | null;
  readonly duration_ms: number | null;
  /** The result, once the task succeeded. */
  readonly output: TaskResult | null;
  readonly failure_type: FailureType | null;
  readonly failure_reason: string | null;
  readonly error: string | null;
}

/** Flat entity columns; arrays and objects are stored as JSON text. */
type TaskEntity = {
  partitionKey: string;
  rowKey: string;
  status: TaskStatus;
  image: string;
  filters: string;
  output_spec: string;
  capability: string;
  queue: string;
  attempts: number;
  worker_id?: string;
  created_at: string;
  started_at?: string;
  completed_at?: string;
  duration_ms?: number;
  output?: string;
  failure_type?: string;
  failure_reason?: string;
  error?: string;
};

export type NewTask = Pick<
  TaskRecord,
  'task_id' | 'job_id' | 'image' | 'filters' | 'output_spec' | 'capability' | 'queue'
>;

/** A task as `create` wrote it, with that write's ETag when the answer carried one. */
export interface CreatedTask {
  readonly record: TaskRecord;
  readonly etag: string | undefined;
}

const MAX_ERROR_CHARS = 4000;

/**
 * One entity tag as If-Match takes it (RFC 9110 8.8.3: optional W/, then a quoted string of visible
 * characters but `"`). A task message's etag is used only in this form: `*` or a list would match
 * whatever version the record is at.
 */
const ENTITY_TAG = /^(W\/)?"[\x21\x23-\x7e]*"$/;

/** The record `create` writes for a new task: queued, not yet attempted, no claim, no outcome. */
export function asCreated(task: NewTask, createdAt: string): TaskRecord {
  return {
    task_id: task.task_id,
    job_id: task.job_id,
    image: task.image,
    filters: task.filters,
    output_spec: task.output_spec,
    capability: task.capability,
    queue: task.queue,
    status: 'queued',
    attempts: 0,
    worker_id: null,
    created_at: createdAt,
    started_at: null,
    completed_at: null,
    duration_ms: null,
    output: null,
    failure_type: null,
    failure_reason: null,
    error: null,
  };
}

function toRecord(e: TableEntityResult<TaskEntity>): TaskRecord {
  return {
    task_id: e.rowKey,
    job_id: e.partitionKey,
    status: e.status,
    image: e.image,
    filters: JSON.parse(e.filters) as FilterSpec[],
    output_spec: JSON.parse(e.output_spec) as Encoding,
    capability: e.capability as CapabilityName,
    queue: e.queue,
    attempts: e.attempts,
    worker_id: e.worker_id ?? null,
    created_at: e.created_at,
    started_at: e.started_at ?? null,
    completed_at: e.completed_at ?? null,
    duration_ms: e.duration_ms ?? null,
    output: e.output ? (JSON.parse(e.output) as TaskResult) : null,
    failure_type: (e.failure_type as FailureType | undefined) ?? null,
    failure_reason: e.failure_reason ?? null,
    error: e.error ?? null,
  };
}

type TaskChange = Partial<
  Omit<TaskRecord, 'task_id' | 'job_id' | 'image' | 'filters' | 'output_spec' | 'capability' | 'queue' | 'created_at'>
>;

type Column = string | number;

/** The columns of the fields a transition can change that `fields` names; null where it clears one. */
function changeColumns(fields: TaskChange): Record<string, Column | null> {
  const columns = {
    status: fields.status,
    attempts: fields.attempts,
    worker_id: fields.worker_id,
    started_at: fields.started_at,
    completed_at: fields.completed_at,
    duration_ms: fields.duration_ms,
    output: fields.output === undefined ? undefined : fields.output && JSON.stringify(fields.output),
    failure_type: fields.failure_type,
    failure_reason: fields.failure_reason,
    error: fields.error === undefined ? undefined : fields.error && fields.error.slice(0, MAX_ERROR_CHARS),
  };
  return Object.fromEntries(
    Object.entries(columns).filter((entry): entry is [string, Column | null] => entry[1] !== undefined),
  );
}

const present = (columns: Record<string, Column | null>): Record<string, Column> =>
  Object.fromEntries(Object.entries(columns).filter((entry): entry is [string, Column] => entry[1] !== null));

/** The whole entity: null fields are left out, so a Replace clears them. */
function toEntity(r: TaskRecord): TaskEntity {
  return {
    partitionKey: r.job_id,
    rowKey: r.task_id,
    status: r.status,
    image: r.image,
    filters: JSON.stringify(r.filters),
    output_spec: JSON.stringify(r.output_spec),
    capability: r.capability,
    queue: r.queue,
    attempts: r.attempts,
    created_at: r.created_at,
    ...present(changeColumns(r)),
  };
}

/** A record as last read or written, with the ETag that write returned. */
export interface StoredTask {
  readonly record: TaskRecord;
  readonly etag: string;
}

export interface Failure {
  readonly type: FailureType;
  readonly reason: string;
  readonly error: string;
}

/** A succeeded task is final: its result exists and is served. */
const isFinal = (task: TaskRecord): boolean => task.status === 'succeeded';

/** Still waiting for a result: queued, or processing under some claim. */
const isOpen = (task: TaskRecord): boolean => task.status === 'queued' || task.status === 'processing';

/**
 * No invocation runs longer than host.json `functionTimeout` (10 min): the host restarts the worker
 * after it. A claim older than that belongs to an invocation that is gone, whatever its worker says.
 */
export const CLAIM_STALE_AFTER_MS = 10 * 60 * 1000;

/** Who runs a task under which attempt: what `start` wrote, and what `succeed` and `fail` check. */
export interface Claim {
  readonly worker_id: string;
  readonly attempt: number;
}

export const claimOf = (task: StoredTask): Claim => ({
  worker_id: task.record.worker_id ?? '',
  attempt: task.record.attempts,
});

const holds = (task: TaskRecord, claim: Claim): boolean =>
  task.status === 'processing' && task.worker_id === claim.worker_id && task.attempts === claim.attempt;

/** How old a processing task's claim is, in ms (0 when it has none). */
export const claimAgeMs = (task: TaskRecord, now = new Date()): number =>
  task.started_at ? Math.max(0, now.getTime() - Date.parse(task.started_at)) : 0;

/** The outcome of a transition: the record as it now stands, and whether this call wrote it. */
export interface Transition {
  readonly task: StoredTask;
  readonly changed: boolean;
}

/** How many times a transition reads again after losing a write to a concurrent one. */
const CONFLICT_RETRIES = 5;

export class TaskStore {
  constructor(private readonly table: TableClient) {}

  /** Writes new tasks, queued; each comes back with the ETag its write returned (a task message carries it). */
  async create(tasks: readonly NewTask[], now = new Date()): Promise<CreatedTask[]> {
    const records = tasks.map((t) => asCreated(t, now.toISOString()));
    const created: CreatedTask[] = [];
    // One job is one partition: batches of up to 100 entities are written atomically.
    for (let i = 0; i < records.length; i += 100) {
      const batch = records.slice(i, i + 100);
      try {
        const { subResponses } = await this.table.submitTransaction(
          batch.map((r): TransactionAction => ['create', toEntity(r)]),
        );
        // the SDK takes each sub-response's ETag header line whole: a CRLF answer leaves the CR on it
        const etags = new Map(subResponses.map((r) => [r.rowKey, r.etag?.trim() || undefined]));
        for (const record of batch) created.push({ record, etag: etags.get(record.task_id) });
      } catch (err) {
        // a job of more than 100 tasks is several transactions: when one fails, the ones written before it
        // go again, or their records would stay queued forever with no message (the caller is told to
        // resubmit). A cleanup that fails too (storage down) leaves them; the error is the caller's.
        await this.removeCreated(created.map((c) => c.record)).catch(() => undefined);
        throw err;
      }
    }
    return created;
  }

  /** Deletes records `create` wrote (no message was sent for them, so no worker can have changed them). */
  private async removeCreated(records: readonly TaskRecord[]): Promise<void> {
    for (let i = 0; i < records.length; i += 100) {
      await this.table.submitTransaction(
        records
          .slice(i, i + 100)
          .map((r): TransactionAction => ['delete', { partitionKey: r.job_id, rowKey: r.task_id }]),
      );
    }
  }

  async get(taskId: string): Promise<TaskRecord | undefined> {
    return (await this.read(taskId))?.record;
  }

  async listJob(jobId: string): Promise<TaskRecord[]> {
    const records: TaskRecord[] = [];
    const query = this.table.listEntities<TaskEntity>({
      queryOptions: { filter: `PartitionKey eq '${jobId.replace(/'/g, "''")}'` },
    });
    for await (const entity of query) records.push(toRecord(entity));
    return records.sort((a, b) => a.task_id.localeCompare(b.task_id));
  }

  /**
   * A worker takes the task: processing, one more attempt, its claim. Unchanged when the task
   * succeeded, or when another delivery holds a claim that is younger than CLAIM_STALE_AFTER_MS and
   * that `claimStands` (asked only then) says is live. Undefined when there is no such task.
   * `task` is the task id, or the record as its task message says it was created (`asCreated` and the
   * message's etag): the claim is then written at once, guarded by that ETag, and the record is read
   * only when it is no longer that version (a copy, a retry, a replayed dead letter) or the ETag is
   * not one entity tag.
   */
  start(
    task: string | StoredTask,
    workerId: string,
    claimStands: (task: TaskRecord) => Promise<boolean> = () => Promise.resolve(true),
    now = new Date(),
  ): Promise<Transition | undefined> {
    const presumed = typeof task !== 'string';
    return this.change(
      task,
      async (t) => {
        if (isFinal(t)) return undefined;
        if (t.status === 'processing' && claimAgeMs(t, now) < CLAIM_STALE_AFTER_MS && (await claimStands(t))) {
          return undefined;
        }
        return { status: 'processing', attempts: t.attempts + 1, worker_id: workerId, started_at: now.toISOString() };
      },
      presumed,
    );
  }

  /** The result is written: succeeded, with how long the attempt took, if the claim still stands. */
  succeed(task: StoredTask, output: TaskResult, durationMs: number, now = new Date()): Promise<Transition | undefined> {
    const claim = claimOf(task);
    return this.change(task, (t) =>
      holds(t, claim)
        ? {
            status: 'succeeded',
            completed_at: now.toISOString(),
            duration_ms: durationMs,
            output,
            failure_type: null,
            failure_reason: null,
            error: null,
          }
        : undefined,
    );
  }

  /**
   * The task failed. From a worker (a StoredTask it started) only while its claim stands; by id
   * (a garbled message, the poison function, a failed enqueue) only while the task is still open
   * (queued or processing): a task that failed keeps its first reason, and a succeeded one is final.
   */
  fail(task: StoredTask | string, failure: Failure, now = new Date()): Promise<Transition | undefined> {
    const claim = typeof task === 'string' ? undefined : claimOf(task);
    return this.change(task, (t) =>
      (claim ? holds(t, claim) : isOpen(t))
        ? {
            status: 'failed',
            completed_at: now.toISOString(),
            failure_type: failure.type,
            failure_reason: failure.reason,
            error: failure.error,
          }
        : undefined,
    );
  }

  /** Back to the queue after a failure (a dead letter is replayed); only a failed task goes back. */
  requeue(taskId: string): Promise<Transition | undefined> {
    return this.change(taskId, (t) =>
      t.status === 'failed'
        ? { status: 'queued', completed_at: null, failure_type: null, failure_reason: null, error: null }
        : undefined,
    );
  }

  /**
   * Applies `decide` to the task as last seen and writes the change only if nobody changed the record
   * meanwhile (ETag); on a conflict it reads again and decides again. `decide` returns undefined to
   * leave the record as it is. Undefined when the task does not exist.
   * A `presumed` record was not read but said by a message: nothing is concluded from it until a write
   * guarded by its ETag succeeds; a 400 (the server found that ETag malformed) or a 404 (no such record:
   * the read says so) read like a 412.
   */
  private async change(
    from: StoredTask | string,
    decide: (current: TaskRecord) => TaskChange | undefined | Promise<TaskChange | undefined>,
    presumed = false,
  ): Promise<Transition | undefined> {
    const taskId = typeof from === 'string' ? from : from.record.task_id;
    let unverified = presumed && typeof from !== 'string' && ENTITY_TAG.test(from.etag);
    let current = typeof from === 'string' || (presumed && !unverified) ? await this.read(taskId) : from;
    for (let i = 0; i < CONFLICT_RETRIES && current; i++) {
      const change = await decide(current.record);
      if (!change && !unverified) return { task: current, changed: false };
      if (change) {
        try {
          const { etag } = await this.write(current, change);
          // no ETag in the answer: the next transition needs a fresh one
          const written = etag ? { record: { ...current.record, ...change }, etag } : await this.read(taskId);
          return written && { task: written, changed: true };
        } catch (err) {
          if (!isStatus(err, 412) && !(unverified && (isStatus(err, 400) || isStatus(err, 404)))) throw err;
        }
      }
      // the record is not the version decided on, or was only presumed: read it and decide again
      unverified = false;
      current = await this.read(taskId);
    }
    if (!current) return undefined;
    throw new Error(`task ${taskId} kept changing under ${CONFLICT_RETRIES} attempts to update it`);
  }

  /**
   * Writes `change` over `current`, guarded by its ETag: only the changed columns (Merge), so a column
   * the transition does not own keeps what the server has; the whole record (Replace) only when the
   * change clears a column the record has, since a Merge cannot remove one. Writes of one job asked for
   * together (a queue batch's claims) go as one transaction (updateIfMatch), each under its own ETag.
   */
  private write(current: StoredTask, change: TaskChange): Promise<{ etag?: string }> {
    const { record, etag } = current;
    const clears = (Object.keys(change) as (keyof TaskChange)[]).some((k) => change[k] === null && record[k] !== null);
    if (clears) return updateIfMatch(this.table, toEntity({ ...record, ...change }), 'Replace', etag);
    const columns = { partitionKey: record.job_id, rowKey: record.task_id, ...present(changeColumns(change)) };
    return updateIfMatch(this.table, columns, 'Merge', etag);
  }

  private async read(taskId: string): Promise<StoredTask | undefined> {
    const jobId = jobIdOf(taskId);
    if (!jobId) return undefined;
    try {
      const entity = await this.table.getEntity<TaskEntity>(jobId, taskId);
      return { record: toRecord(entity), etag: entity.etag };
    } catch (err) {
      if (isStatus(err, 404)) return undefined;
      throw err;
    }
  }
}
