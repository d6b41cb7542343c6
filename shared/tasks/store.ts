/**
 * Task records in Table storage: partition = job, row = task, so a task is a point read and a
 * job is one partition query. Every status change is guarded by the entity's ETag: two
 * deliveries of the same message cannot both win.
 */
import type { TableClient, TableEntityResult, TransactionAction } from '@azure/data-tables';
import type { CapabilityName } from './capabilities';
import type { FilterSpec } from './spec';
import type { OutputSpec } from '../imaging/output';
import { jobIdOf } from './message';

export type TaskStatus = 'queued' | 'processing' | 'succeeded' | 'failed';
export type FailureType = 'job_failure' | 'worker_failure';

export interface TaskOutput {
  readonly blob: string;
  readonly format: string;
  readonly content_type: string;
  readonly width: number;
  readonly height: number;
  readonly bytes: number;
}

export interface TaskRecord {
  readonly task_id: string;
  readonly job_id: string;
  readonly status: TaskStatus;
  readonly image: string;
  readonly filters: readonly FilterSpec[];
  readonly output_spec: OutputSpec;
  readonly capability: CapabilityName;
  readonly queue: string;
  readonly attempts: number;
  readonly worker_id: string | null;
  readonly created_at: string;
  readonly started_at: string | null;
  readonly completed_at: string | null;
  readonly duration_ms: number | null;
  readonly output: TaskOutput | null;
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

export type TaskChange = Partial<
  Omit<TaskRecord, 'task_id' | 'job_id' | 'image' | 'filters' | 'output_spec' | 'capability' | 'queue' | 'created_at'>
>;

const MAX_ERROR_CHARS = 4000;

function toRecord(e: TableEntityResult<TaskEntity>): TaskRecord {
  return {
    task_id: e.rowKey!,
    job_id: e.partitionKey!,
    status: e.status,
    image: e.image,
    filters: JSON.parse(e.filters) as FilterSpec[],
    output_spec: JSON.parse(e.output_spec) as OutputSpec,
    capability: e.capability as CapabilityName,
    queue: e.queue,
    attempts: e.attempts,
    worker_id: e.worker_id ?? null,
    created_at: e.created_at,
    started_at: e.started_at ?? null,
    completed_at: e.completed_at ?? null,
    duration_ms: e.duration_ms ?? null,
    output: e.output ? (JSON.parse(e.output) as TaskOutput) : null,
    failure_type: (e.failure_type as FailureType | undefined) ?? null,
    failure_reason: e.failure_reason ?? null,
    error: e.error ?? null,
  };
}

/** The whole entity: null fields are left out, so a Replace clears them. */
function toEntity(r: TaskRecord): TaskEntity {
  const optional = {
    worker_id: r.worker_id,
    started_at: r.started_at,
    completed_at: r.completed_at,
    duration_ms: r.duration_ms,
    output: r.output ? JSON.stringify(r.output) : null,
    failure_type: r.failure_type,
    failure_reason: r.failure_reason,
    error: r.error?.slice(0, MAX_ERROR_CHARS) ?? null,
  };
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
    ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== null)),
  };
}

const isStatus = (err: unknown, status: number) => (err as { statusCode?: number }).statusCode === status;

export class TaskStore {
  constructor(private readonly table: TableClient) {}

  async create(tasks: readonly NewTask[], now = new Date()): Promise<TaskRecord[]> {
    const records: TaskRecord[] = tasks.map((t) => ({
      ...t,
      status: 'queued',
      attempts: 0,
      worker_id: null,
      created_at: now.toISOString(),
      started_at: null,
      completed_at: null,
      duration_ms: null,
      output: null,
      failure_type: null,
      failure_reason: null,
      error: null,
    }));
    // One job is one partition: batches of up to 100 entities are written atomically.
    for (let i = 0; i < records.length; i += 100) {
      await this.table.submitTransaction(
        records.slice(i, i + 100).map((r): TransactionAction => ['create', toEntity(r)]),
      );
    }
    return records;
  }

  async get(taskId: string): Promise<TaskRecord | undefined> {
    return (await this.getEntity(taskId))?.record;
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
   * Applies `decide` to the current record and writes its change only if nobody changed the
   * record meanwhile (ETag); on a conflict it reads again and decides again. `decide` returns
   * undefined to leave the record as it is.
   */
  async transition(
    taskId: string,
    decide: (current: TaskRecord) => TaskChange | undefined,
    attempts = 5,
  ): Promise<TaskRecord | undefined> {
    for (let i = 0; i < attempts; i++) {
      const current = await this.getEntity(taskId);
      if (!current) return undefined;
      const change = decide(current.record);
      if (!change) return current.record;
      const next: TaskRecord = { ...current.record, ...change };
      try {
        await this.table.updateEntity(toEntity(next), 'Replace', { etag: current.etag });
        return next;
      } catch (err) {
        if (!isStatus(err, 412)) throw err;
      }
    }
    throw new Error(`task ${taskId} kept changing under ${attempts} attempts to update it`);
  }

  private async getEntity(taskId: string): Promise<{ record: TaskRecord; etag: string } | undefined> {
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
