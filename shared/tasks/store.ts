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

export type NewTask = Pick<TaskRecord, 'task_id' | 'job_id' | 'image' | 'filters' | 'output_spec' | 'capability' | 'queue'>;

export type TaskChange = Partial<Omit<TaskRecord, 'task_id' | 'job_id' | 'image' | 'filters' | 'output_spec' | 'capability' | 'queue' | 'created_at'>>;

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

/** Only the columns a change touches; null clears a column. */
function toColumns(change: TaskChange): Record<string, unknown> {
  const columns: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(change)) {
    if (value === undefined) continue;
    if (key === 'output') columns.output = value === null ? null : JSON.stringify(value);
    else if (key === 'error' && typeof value === 'string') columns.error = value.slice(0, MAX_ERROR_CHARS);
    else columns[key] = value;
  }
  return columns;
}

const isStatus = (err: unknown, status: number) => (err as { statusCode?: number }).statusCode === status;

export class TaskStore {
  constructor(private readonly table: TableClient) {}

  async create(tasks: readonly NewTask[], now = new Date()): Promise<TaskRecord[]> {
    const created = now.toISOString();
    const entities: TaskEntity[] = tasks.map((t) => ({
      partitionKey: t.job_id,
      rowKey: t.task_id,
      status: 'queued',
      image: t.image,
      filters: JSON.stringify(t.filters),
      output_spec: JSON.stringify(t.output_spec),
      capability: t.capability,
      queue: t.queue,
      attempts: 0,
      created_at: created,
    }));
    // One job is one partition: batches of up to 100 entities are written atomically.
    for (let i = 0; i < entities.length; i += 100) {
      await this.table.submitTransaction(entities.slice(i, i + 100).map((e): TransactionAction => ['create', e]));
    }
    return entities.map((e) => toRecord(e as TableEntityResult<TaskEntity>));
  }

  async get(taskId: string): Promise<TaskRecord | undefined> {
    return (await this.getEntity(taskId))?.record;
  }

  async listJob(jobId: string): Promise<TaskRecord[]> {
    const records: TaskRecord[] = [];
    const query = this.table.listEntities<TaskEntity>({ queryOptions: { filter: `PartitionKey eq '${jobId.replace(/'/g, "''")}'` } });
    for await (const entity of query) records.push(toRecord(entity));
    return records.sort((a, b) => a.task_id.localeCompare(b.task_id));
  }

  /**
   * Applies `decide` to the current record and writes its change only if nobody changed the
   * record meanwhile (ETag); on a conflict it reads again and decides again. `decide` returns
   * undefined to leave the record as it is.
   */
  async transition(taskId: string, decide: (current: TaskRecord) => TaskChange | undefined, attempts = 5): Promise<TaskRecord | undefined> {
    for (let i = 0; i < attempts; i++) {
      const current = await this.getEntity(taskId);
      if (!current) return undefined;
      const change = decide(current.record);
      if (!change) return current.record;
      try {
        await this.table.updateEntity({ partitionKey: current.record.job_id, rowKey: taskId, ...toColumns(change) }, 'Merge', { etag: current.etag });
        return { ...current.record, ...change };
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
