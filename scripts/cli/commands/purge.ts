/**
 * `purge`: deletes every task record, dead letter, queued message (main and poison queues)
 * and processed result, straight through the storage layer (the API has no bulk delete). It
 * reads the storage connection like the app does: AzureWebJobsStorage and STORAGE_NAMESPACE
 * from the environment, else from local.settings.json. Images and metrics are kept.
 */
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import type { TableClient } from '@azure/data-tables';
import type { Storage } from '../../../shared/storage/clients';
import { CAPABILITIES } from '../../../shared/capabilities';
import { PROJECT_ROOT } from '../../paths';
import { loadLocalSettings } from '../../local-settings';
import type { CliContext } from '../context';
import { isTty, writeLine, type CliIo } from '../io';

export const PURGE_QUESTION = 'Delete all task records, dead letters and processed results? [y/N]';
/** A table transaction holds at most 100 operations, all in one partition. */
const BATCH = 100;

/** The first line typed, or undefined when stdin ends first (nothing typed, or /dev/null). */
function readAnswer(io: CliIo): Promise<string | undefined> {
  const rl = createInterface({ input: io.stdin, terminal: false });
  return new Promise((resolve) => {
    rl.once('line', (line) => {
      resolve(line);
      rl.close();
    });
    rl.once('close', () => resolve(undefined));
  });
}

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

async function clearQueues(storage: Storage): Promise<number> {
  let cleared = 0;
  for (const queue of CAPABILITIES.flatMap((c) => [storage.queue(c.name), storage.poisonQueue(c.name)])) {
    cleared += (await queue.getProperties()).approximateMessagesCount ?? 0;
    await queue.clearMessages();
  }
  return cleared;
}

/** Deletes page by page, a page's blobs concurrently: one at a time takes minutes for a big backlog. */
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

export async function runPurge(io: CliIo, opts: { yes?: boolean }): Promise<number> {
  if (!opts.yes) {
    io.stdout.write(`${PURGE_QUESTION} `);
    const answer = await readAnswer(io);
    if (answer === undefined && !isTty(io.stdin)) {
      writeLine(
        io.stderr,
        '\nerror: refusing to purge: stdin is not a terminal and no answer came; pass --yes to purge without asking',
      );
      return 2;
    }
    if (!/^\s*y(es)?\s*$/i.test(answer ?? '')) {
      writeLine(io.stdout, 'Nothing deleted.');
      return 1;
    }
  }
  loadLocalSettings(PROJECT_ROOT);
  // Loaded only here: the Azure SDKs cost a few hundred ms that no other command needs.
  const { appStorage } = await import('../../../shared/storage/clients');
  const storage = appStorage();
  await storage.ensureResources();
  const [tasks, deadLetters, messages, results] = await Promise.all([
    deleteAllEntities(storage.tasks),
    deleteAllEntities(storage.deadLetters),
    clearQueues(storage),
    deleteProcessed(storage),
  ]);
  const namespace = process.env.STORAGE_NAMESPACE;
  writeLine(
    io.stdout,
    `purged storage account ${storage.processed.accountName}${namespace ? `, namespace ${namespace}` : ''}:`,
  );
  writeLine(io.stdout, `  ${tasks} task record(s) from table ${storage.names.tasksTable}`);
  writeLine(io.stdout, `  ${deadLetters} dead letter(s) from table ${storage.names.deadLettersTable}`);
  writeLine(
    io.stdout,
    `  ${messages} queued message(s) from ${CAPABILITIES.flatMap((c) => [storage.names.queueOf(c.name), storage.names.poisonQueueOf(c.name)]).join(', ')}`,
  );
  writeLine(io.stdout, `  ${results} processed result(s) from container ${storage.names.processed}`);
  return 0;
}

export function registerPurge(program: Command, ctx: CliContext): void {
  program
    .command('purge')
    .description('delete all task records, dead letters, queued messages and processed results (asks first)')
    .option('--yes', 'do not ask')
    .action(async (opts: { yes?: boolean }) => ctx.exit(await runPurge(ctx.io, opts)));
}
