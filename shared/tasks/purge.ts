/**
 * Purge: forget every task. Deletes the queued messages (main and poison queues), the task
 * records and the job index, the dead letters and the processed results; keeps the images (inputs), the worker
 * registry and the metrics history, which describe the app rather than its tasks.
 */
import type { TableClient } from '@azure/data-tables';
import { CAPABILITIES } from '../capabilities';
import type { Storage } from '../storage/clients';

export interface PurgeReport {
  readonly queued_messages: { readonly deleted: number; readonly queues: readonly string[] };
  readonly task_records: { readonly deleted: number; readonly table: string };
  /** The job index's rows (tasks/job-index.ts): a job without tasks is not a job. */
  readonly job_records: { readonly deleted: number; readonly table: string };
  readonly dead_letters: { readonly deleted: number; readonly table: string };
  readonly processed_results: { readonly deleted: number; readonly container: string };
  readonly kept: readonly string[];
}

/** A table transaction holds at most 100 operations, all in one partition; a blob page is as big. */
const BATCH = 100;

async function deleteAllEntities(table: TableClient): Promise<number> {
  const byPartition = new Map<string, string[]>();
  for await (const e of table.listEntities({ queryOptions: { select: ['PartitionKey', 'RowKey'] } })) {
    const rows = byPartition.get(e.partitionKey!) ?? [];
    rows.push(e.rowKey!);
    byPartition.set(e.partitionKey!, rows);
  }
  let deleted = 0;
  for (const [partitionKey, rowKeys] of byPartition) {
    for (let i = 0; i < rowKeys.length; i += BATCH) {
      const chunk = rowKeys.slice(i, i + BATCH);
      await table.submitTransaction(chunk.map((rowKey) => ['delete', { partitionKey, rowKey }]));
      deleted += chunk.length;
    }
  }
  return deleted;
}

/** The count is the queues' approximate message count just before clearing (invisible messages included). */
async function clearQueues(storage: Storage): Promise<number> {
  const queues = CAPABILITIES.flatMap((c) => [storage.queue(c.name), storage.poisonQueue(c.name)]);
  const counts = await Promise.all(
    queues.map(async (queue) => {
      const { approximateMessagesCount = 0 } = await queue.getProperties();
      await queue.clearMessages();
      return approximateMessagesCount;
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

/** Page by page, a page's blobs concurrently: one at a time takes minutes for a big backlog. */
async function deleteProcessed(storage: Storage): Promise<number> {
  let deleted = 0;
  for await (const page of storage.processed.listBlobsFlat().byPage({ maxPageSize: BATCH })) {
    await Promise.all(
      page.segment.blobItems.map((blob) => storage.processed.deleteBlob(blob.name, { deleteSnapshots: 'include' })),
    );
    deleted += page.segment.blobItems.length;
  }
  return deleted;
}

export async function purgeTasks(storage: Storage): Promise<PurgeReport> {
  await storage.ensureResources();
  // Messages first, so no worker starts a task whose record is about to go.
  const messages = await clearQueues(storage);
  const [tasks, deadLetters, results, jobs] = await Promise.all([
    deleteAllEntities(storage.tasks),
    deleteAllEntities(storage.deadLetters),
    deleteProcessed(storage),
    deleteAllEntities(storage.jobs),
  ]);
  const { names } = storage;
  return {
    queued_messages: {
      deleted: messages,
      queues: CAPABILITIES.flatMap((c) => [names.queueOf(c.name), names.poisonQueueOf(c.name)]),
    },
    task_records: { deleted: tasks, table: names.tasksTable },
    job_records: { deleted: jobs, table: names.jobsTable },
    dead_letters: { deleted: deadLetters, table: names.deadLettersTable },
    processed_results: { deleted: results, container: names.processed },
    kept: [
      `images (container ${names.images})`,
      `workers (table ${names.workersTable})`,
      `metrics (table ${names.metricsTable})`,
    ],
  };
}
