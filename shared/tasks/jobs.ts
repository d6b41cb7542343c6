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
import { JobIndex, partitionOf, rowOf } from './job-index';

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
  // the index row first: a job is listed only once it is indexed, and a job whose tasks could not be
  // written loses its row again (a row without tasks is never listed anyway)
  const indexed = await indexJob(storage, jobId, images, spec, capability, now);
  const created = await store
    .create(
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
    )
    .catch(async (err: unknown) => {
      await new JobIndex(storage.jobs).remove(indexed).catch(() => undefined);
      throw err;
    });
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

/** Writes the job's row in the job index (tasks/job-index.ts); answers its keys. */
async function indexJob(
  storage: Storage,
  jobId: string,
  images: readonly string[],
  spec: TaskSpec,
  capability: string,
  now: Date,
): Promise<{ partitionKey: string; rowKey: string }> {
  await new JobIndex(storage.jobs).add({
    job_id: jobId,
    created_at: now.toISOString(),
    total: images.length,
    capability,
    images: new Set(images).size,
    filters: spec.filters.map((f) => f.name),
    output_format: spec.encoding.format,
  });
  return { partitionKey: partitionOf(now), rowKey: rowOf(now, jobId) };
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
  const { status, counts } = countStatuses(tasks.map((t) => t.status));
  return { job_id: jobId, status, total: tasks.length, counts, tasks };
}

/** A job's counts per task status, and its status from them. */
export function countStatuses(statuses: readonly TaskStatus[]): {
  status: JobStatus;
  counts: Record<TaskStatus, number>;
} {
  const counts: Record<TaskStatus, number> = { queued: 0, processing: 0, succeeded: 0, failed: 0 };
  for (const s of statuses) counts[s] += 1;
  const done = counts.succeeded + counts.failed === statuses.length;
  const status: JobStatus = !done
    ? counts.processing + counts.succeeded + counts.failed > 0
      ? 'processing'
      : 'queued'
    : counts.failed === 0
      ? 'succeeded'
      : counts.succeeded === 0
        ? 'failed'
        : 'partially_failed';
  return { status, counts };
}
