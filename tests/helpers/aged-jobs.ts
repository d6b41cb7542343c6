/** Jobs whose tasks ended (or not) at given times, as the task store writes them: for retention tests' fake clocks. */
import { randomUUID } from 'node:crypto';
import type { Storage } from '../../shared/storage/clients';
import { JobIndex } from '../../shared/tasks/job-index';
import { TaskStore, type TaskRecord } from '../../shared/tasks/store';

export type Outcome = 'succeeded' | 'failed' | 'processing' | 'queued';

/**
 * A job created at `at[0]` whose tasks reach `outcomes[i]` at `at[i]` (a result blob for each succeeded one), with
 * its row in the job index as createJob writes it; `indexed: false` leaves the row out, as for a job created
 * before the index existed.
 */
export async function job(
  storage: Storage,
  outcomes: readonly Outcome[],
  at: readonly Date[],
  { indexed = true } = {},
): Promise<TaskRecord[]> {
  const store = new TaskStore(storage.tasks);
  const jobId = randomUUID();
  if (indexed)
    await new JobIndex(storage.jobs).add({
      job_id: jobId,
      created_at: at[0].toISOString(),
      total: outcomes.length,
      capability: 'light',
      images: 1,
      filters: [],
      output_format: 'jpeg',
    });
  const created = await store.create(
    outcomes.map((_, i) => ({
      task_id: `${jobId}_${String(i).padStart(4, '0')}`,
      job_id: jobId,
      image: 'a.jpg',
      filters: [],
      output_spec: { format: 'jpeg', quality: 80 },
      capability: 'light',
      queue: storage.names.queueOf('light'),
    })),
    at[0],
  );
  for (const [i, outcome] of outcomes.entries()) {
    const taskId = created[i].record.task_id;
    if (outcome === 'queued') continue;
    if (outcome === 'failed') {
      await store.fail(taskId, { type: 'job_failure', reason: 'corrupt_image', error: 'bad' }, at[i]);
      continue;
    }
    const started = await store.start(taskId, 'worker-1', undefined, at[i]);
    if (outcome === 'processing') continue;
    const blob = `${taskId}.jpg`;
    await storage.processed.getBlockBlobClient(blob).uploadData(Buffer.from('result'));
    const output = { blob, format: 'jpeg', content_type: 'image/jpeg', width: 1, height: 1, bytes: 6 };
    await store.succeed(started!.task, output, 5, at[i]);
  }
  return store.listJob(jobId);
}
