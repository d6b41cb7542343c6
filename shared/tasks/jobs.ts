/**
 * A job is one task per image, all with the same pipeline, routed to one capability queue.
 * Task records are written before their messages, so a worker never receives a message for a
 * task that does not exist; a message that cannot be sent fails its task instead of leaving
 * it queued forever.
 */
import { randomUUID } from 'node:crypto';
import type { Storage } from '../storage/clients';
import { enqueue } from '../storage/queue';
import { buildTaskMessage } from './message';
import { capabilityFor } from './routing';
import type { TaskSpec } from '../imaging/spec';
import { TaskStore, type TaskRecord, type TaskStatus } from './store';

export interface CreatedJob {
  readonly job_id: string;
  readonly tasks: readonly TaskRecord[];
}

export async function createJob(
  storage: Storage,
  images: readonly string[],
  spec: TaskSpec,
  now = new Date(),
  jobId: string = randomUUID(),
): Promise<CreatedJob> {
  const capability = capabilityFor(spec.filters.map((f) => f.name)).name;
  const store = new TaskStore(storage.tasks);
  const created = await store.create(
    images.map((image, i) => ({
      task_id: `${jobId}_${String(i).padStart(4, '0')}`,
      job_id: jobId,
      image,
      filters: spec.filters,
      output_spec: spec.encoding,
      capability,
      queue: storage.names.queueOf(capability),
    })),
    now,
  );
  // submitted_at is the records' created_at (the same `now`): with the ETag, a worker knows the record
  // as created without reading it
  const sent = await Promise.allSettled(
    created.map((t) => enqueue(storage.queue(capability), buildTaskMessage(t.record, spec, now, t.etag))),
  );
  const records = created.map((t) => t.record);
  const failures = sent.flatMap((result, i) =>
    result.status === 'rejected' ? [{ task: records[i], reason: result.reason as unknown }] : [],
  );
  for (const { task, reason } of failures) {
    await store.fail(task.task_id, { type: 'worker_failure', reason: 'enqueue_failed', error: String(reason) });
  }
  if (failures.length > 0)
    throw new Error(
      `could not enqueue ${failures.length} of ${records.length} tasks of job ${jobId}: ${String(failures[0].reason)}`,
    );
  return { job_id: jobId, tasks: records };
}

export type JobStatus = 'queued' | 'processing' | 'succeeded' | 'failed' | 'partially_failed';

export interface JobSummary {
  readonly job_id: string;
  readonly status: JobStatus;
  readonly total: number;
  readonly counts: Readonly<Record<TaskStatus, number>>;
  readonly tasks: readonly TaskRecord[];
}

export function summarizeJob(jobId: string, tasks: readonly TaskRecord[]): JobSummary {
  const counts: Record<TaskStatus, number> = { queued: 0, processing: 0, succeeded: 0, failed: 0 };
  for (const t of tasks) counts[t.status] += 1;
  const done = counts.succeeded + counts.failed === tasks.length;
  const status: JobStatus = !done
    ? counts.processing + counts.succeeded + counts.failed > 0
      ? 'processing'
      : 'queued'
    : counts.failed === 0
      ? 'succeeded'
      : counts.succeeded === 0
        ? 'failed'
        : 'partially_failed';
  return { job_id: jobId, status, total: tasks.length, counts, tasks };
}
