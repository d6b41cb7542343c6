/**
 * Conditional updates asked for together go as one entity-group transaction per partition, and each
 * caller still gets the answer its own request would have had: a new ETag that guards its next write,
 * or the 412 of a stale ETag, while the others in the same transaction are written.
 */
import type { TableClient, TableEntity, TransactionAction, UpdateMode } from '@azure/data-tables';
import { transactions, updateIfMatch } from '../../../shared/storage/table-writes';
import { normalizeTaskSpec } from '../../../shared/imaging/spec';
import { createJob } from '../../../shared/tasks/jobs';
import { decodeMessageText } from '../../../shared/storage/queue';
import { processTaskMessage } from '../../../shared/tasks/worker';
import { photo } from '../../helpers/images';
import { useAzurite } from '../../helpers/storage';
import { workerDeps } from '../../helpers/worker';
import type { Storage } from '../../../shared/storage/clients';

const env = useAzurite();

interface Sent {
  /** Entities per transaction the service was sent, in order. */
  transactions: number[];
  /** Updates sent on their own: the status the service answered, or 'ok'. */
  alone: (number | 'ok')[];
}

/** The table, recording what goes to the service: each transaction's size and each lone update. */
function recording(table: TableClient): { table: TableClient; sent: Sent } {
  const sent: Sent = { transactions: [], alone: [] };
  const spy = Object.create(table) as TableClient;
  spy.submitTransaction = (actions: TransactionAction[]) => {
    sent.transactions.push(actions.length);
    return table.submitTransaction(actions);
  };
  spy.updateEntity = async (...args: Parameters<TableClient['updateEntity']>) => {
    const i = sent.alone.push('ok') - 1;
    try {
      return await table.updateEntity(...args);
    } catch (err) {
      sent.alone[i] = (err as { statusCode?: number }).statusCode ?? -1;
      throw err;
    }
  };
  return { table: spy, sent };
}

/** `count` entities in partition `pk`, and the ETag each has. */
async function entities(table: TableClient, pk: string, count: number): Promise<Map<string, string>> {
  const etags = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const { etag } = await table.createEntity({ partitionKey: pk, rowKey: `r${String(i).padStart(3, '0')}`, n: 0 });
    etags.set(`r${String(i).padStart(3, '0')}`, etag!);
  }
  return etags;
}

const status = (err: unknown) => (err as { statusCode?: number }).statusCode;

describe('transactions: the service limits of one entity-group transaction', () => {
  const u = (rowKey: string) => ({ entity: { partitionKey: 'p', rowKey } as TableEntity });

  it('keeps the order, at most 100 entities each', () => {
    const rows = Array.from({ length: 250 }, (_, i) => u(`r${i}`));
    const groups = transactions(rows);
    expect(groups.map((g) => g.length)).toEqual([100, 100, 50]);
    expect(groups.flat()).toEqual(rows);
  });

  it('puts a second update of one entity in another transaction', () => {
    const groups = transactions([u('a'), u('b'), u('a'), u('a'), u('c')]);
    expect(groups.map((g) => g.map((x) => x.entity.rowKey))).toEqual([['a', 'b', 'c'], ['a'], ['a']]);
  });

  it('leaves nothing out of an empty or single list', () => {
    expect(transactions([])).toEqual([]);
    expect(transactions([u('a')])).toEqual([[u('a')]]);
  });
});

describe('updateIfMatch on Azurite', () => {
  let storage: Storage;
  beforeAll(async () => {
    storage = await env.storage();
  });

  it('sends the updates of one partition asked for together as one transaction, each answered with its new ETag', async () => {
    const { table, sent } = recording(storage.tasks);
    const etags = await entities(storage.tasks, 'together', 8);
    const answers = await Promise.all(
      [...etags].map(([rowKey, etag]) =>
        updateIfMatch(table, { partitionKey: 'together', rowKey, n: 1 }, 'Merge', etag),
      ),
    );
    expect(sent).toEqual({ transactions: [8], alone: [] });
    // each answer is the entity's ETag now, and guards the next write of it
    for (const [i, rowKey] of [...etags.keys()].entries()) {
      const stored = await storage.tasks.getEntity<{ n: number }>('together', rowKey);
      expect(stored.n).toBe(1);
      expect(answers[i].etag).toBe(stored.etag);
      expect(answers[i].etag).not.toBe(etags.get(rowKey));
    }
    const next = await Promise.all(
      [...etags.keys()].map((rowKey, i) =>
        updateIfMatch(table, { partitionKey: 'together', rowKey, n: 2 }, 'Replace', answers[i].etag!),
      ),
    );
    expect(next.every((a) => typeof a.etag === 'string')).toBe(true);
    expect(sent.transactions).toEqual([8, 8]);
  });

  it('a stale ETag fails only its own update: the others are written, each on its own', async () => {
    const { table, sent } = recording(storage.tasks);
    const etags = await entities(storage.tasks, 'stale', 4);
    await storage.tasks.updateEntity({ partitionKey: 'stale', rowKey: 'r002', n: 99 }, 'Merge'); // changed meanwhile
    const answers = await Promise.allSettled(
      [...etags].map(([rowKey, etag]) => updateIfMatch(table, { partitionKey: 'stale', rowKey, n: 1 }, 'Merge', etag)),
    );
    expect(answers.map((a) => a.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(status((answers[2] as PromiseRejectedResult).reason)).toBe(412);
    // the transaction wrote nothing; every update was sent again alone and got its own answer
    expect(sent).toEqual({ transactions: [4], alone: ['ok', 'ok', 412, 'ok'] });
    const stored = await Promise.all(
      [...etags.keys()].map((rk) => storage.tasks.getEntity<{ n: number }>('stale', rk)),
    );
    expect(stored.map((e) => e.n)).toEqual([1, 1, 99, 1]);
    expect((answers[0] as PromiseFulfilledResult<{ etag?: string }>).value.etag).toBe(stored[0].etag);
  });

  it('sends partitions apart, a lone update alone, and more than 100 in more than one transaction', async () => {
    const { table, sent } = recording(storage.tasks);
    const a = await entities(storage.tasks, 'big', 130);
    const b = await entities(storage.tasks, 'lone', 1);
    const update = (pk: string, etags: Map<string, string>, mode: UpdateMode) =>
      [...etags].map(([rowKey, etag]) => updateIfMatch(table, { partitionKey: pk, rowKey, n: 3 }, mode, etag));
    await Promise.all([...update('big', a, 'Merge'), ...update('lone', b, 'Merge')]);
    expect(sent.transactions).toEqual([100, 30]);
    expect(sent.alone).toEqual(['ok']);
  });

  it('updates asked for in different turns of the event loop are not held for each other', async () => {
    const { table, sent } = recording(storage.tasks);
    const etags = [...(await entities(storage.tasks, 'apart', 2))];
    await updateIfMatch(table, { partitionKey: 'apart', rowKey: etags[0][0], n: 4 }, 'Merge', etags[0][1]);
    await updateIfMatch(table, { partitionKey: 'apart', rowKey: etags[1][0], n: 4 }, 'Merge', etags[1][1]);
    expect(sent).toEqual({ transactions: [], alone: ['ok', 'ok'] });
  });

  it('an ETag that is no entity tag fails its own update with the status the service gives it alone', async () => {
    const { table, sent } = recording(storage.tasks);
    const etags = [...(await entities(storage.tasks, 'garbled', 2))];
    const answers = await Promise.allSettled([
      updateIfMatch(table, { partitionKey: 'garbled', rowKey: etags[0][0], n: 5 }, 'Merge', etags[0][1]),
      updateIfMatch(table, { partitionKey: 'garbled', rowKey: etags[1][0], n: 5 }, 'Merge', 'W/"no-such-version"'),
    ]);
    expect(answers[0].status).toBe('fulfilled');
    expect(answers[1].status).toBe('rejected');
    const alone = await table
      .updateEntity({ partitionKey: 'garbled', rowKey: etags[1][0], n: 5 }, 'Merge', {
        etag: 'W/"no-such-version"',
      })
      .then(
        () => 'ok',
        (err: unknown) => status(err),
      );
    expect(status((answers[1] as PromiseRejectedResult).reason)).toBe(alone);
    expect(sent.transactions).toEqual([2]);
  });
});

describe('a queue batch of one job claims its tasks in one transaction', () => {
  it('8 messages handed over together: one transaction of 8 claims, no read, every task succeeds', async () => {
    const storage = await env.storage();
    await storage.images.getBlockBlobClient('a.jpg').uploadData(await photo(64, 48, 'jpeg'));
    const job = await createJob(storage, Array<string>(8).fill('a.jpg'), normalizeTaskSpec({ filters: ['grayscale'] }));
    const messages = (await storage.queue('light').receiveMessages({ numberOfMessages: 8 })).receivedMessageItems.map(
      (m) => JSON.parse(decodeMessageText(m.messageText)) as unknown,
    );
    expect(messages).toHaveLength(8);
    const { table, sent } = recording(storage.tasks);
    let reads = 0;
    table.getEntity = (...args: Parameters<TableClient['getEntity']>) => {
      reads += 1;
      return storage.tasks.getEntity(...args);
    };
    const counted = Object.create(storage) as Storage;
    Object.defineProperty(counted, 'tasks', { value: table });
    const outcomes = await Promise.all(messages.map((m) => processTaskMessage(m, workerDeps(counted))));
    expect(outcomes).toEqual(Array(8).fill('succeeded'));
    expect(reads).toBe(0);
    expect(sent.transactions[0]).toBe(8); // the claims; the completions share transactions when they land together
    expect(sent.transactions.slice(1).reduce((a, b) => a + b, 0) + sent.alone.length).toBe(8);
    const records = await Promise.all(
      job.tasks.map((t) => storage.tasks.getEntity<{ status: string }>(job.job_id, t.task_id)),
    );
    expect(records.map((r) => r.status)).toEqual(Array(8).fill('succeeded'));
  });
});
