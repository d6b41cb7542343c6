/**
 * Conditional updates of a table's entities, coalesced: the updates asked for in one turn of the event
 * loop go to the service as one entity-group transaction per partition, instead of one request each.
 * The host starts every message of a received batch without waiting for the others (QueueListener.
 * ExecuteAsync in azure-webjobs-sdk's storage queues extension; the local host does the same), so the
 * claims of a batch (one job is one partition of the tasks table) are one request, not batchSize
 * requests; completions that land in the same turn share one too.
 *
 * Nothing about an update's meaning changes. Each keeps its own If-Match, and a transaction is atomic:
 * when it fails for any reason (one entity changed since its ETag was read, 412; a throttle; a lost
 * answer) none of it was written, and every update in it is sent again on its own, so each caller gets
 * exactly the answer its own request would have had. The service's limits for a transaction are kept:
 * one partition, at most 100 entities, an entity at most once (a second update of the same entity goes
 * in another transaction). Payloads are small (a claim, a result link, an error cut to 4000
 * characters), far under the 4 MiB a transaction may carry.
 * https://learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions
 *
 * Measured on Azurite, 8 concurrent Merge updates with If-Match, 400 entities: one request each costs
 * Azurite 1.9 ms and this process 1.0 ms of CPU per entity; one transaction of 8 costs 0.55 and 0.53.
 */
import type { TableClient, TableEntity, TransactionAction, UpdateMode } from '@azure/data-tables';

/** The most entities one entity-group transaction may change. */
export const MAX_TRANSACTION_ENTITIES = 100;

interface Update {
  readonly entity: TableEntity;
  readonly mode: UpdateMode;
  readonly etag: string;
  readonly resolve: (answer: { etag?: string }) => void;
  readonly reject: (err: unknown) => void;
}

class UpdateCoalescer {
  private pending = new Map<string, Update[]>();
  private scheduled = false;

  constructor(private readonly table: TableClient) {}

  update(entity: TableEntity, mode: UpdateMode, etag: string): Promise<{ etag?: string }> {
    return new Promise((resolve, reject) => {
      const partition = this.pending.get(entity.partitionKey);
      const update = { entity, mode, etag, resolve, reject };
      if (partition) partition.push(update);
      else this.pending.set(entity.partitionKey, [update]);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    const partitions = this.pending;
    this.pending = new Map();
    this.scheduled = false;
    for (const updates of partitions.values()) {
      for (const group of transactions(updates)) void this.send(group);
    }
  }

  private async send(group: readonly Update[]): Promise<void> {
    if (group.length === 1) return this.sendAlone(group[0]);
    let subResponses: { etag?: string }[];
    try {
      const actions = group.map((u): TransactionAction => ['update', u.entity, u.mode, { etag: u.etag }]);
      ({ subResponses } = await this.table.submitTransaction(actions));
    } catch {
      // nothing of the transaction was written: each update on its own gets its own answer
      await Promise.all(group.map((u) => this.sendAlone(u)));
      return;
    }
    // sub-responses come in the order of the operations; without a matching one, the caller reads afresh
    // (the SDK keeps each sub-response's ETag header line whole: a CRLF answer leaves the CR on it)
    const answered = subResponses.length === group.length;
    group.forEach((u, i) => u.resolve({ etag: (answered && subResponses[i].etag?.trim()) || undefined }));
  }

  private async sendAlone(u: Update): Promise<void> {
    try {
      u.resolve(await this.table.updateEntity(u.entity, u.mode, { etag: u.etag }));
    } catch (err) {
      u.reject(err);
    }
  }
}

/** One partition's updates as transactions the service takes: at most 100 entities, each at most once. */
export function transactions<T extends { readonly entity: TableEntity }>(updates: readonly T[]): T[][] {
  const groups: { updates: T[]; rows: Set<string> }[] = [];
  for (const update of updates) {
    const row = update.entity.rowKey;
    let group = groups.find((g) => !g.rows.has(row) && g.updates.length < MAX_TRANSACTION_ENTITIES);
    if (!group) groups.push((group = { updates: [], rows: new Set() }));
    group.updates.push(update);
    group.rows.add(row);
  }
  return groups.map((g) => g.updates);
}

const coalescers = new WeakMap<TableClient, UpdateCoalescer>();

/**
 * Updates `entity` (Merge: only its columns; Replace: the whole entity) if the service still has it at
 * `etag`, as TableClient.updateEntity does, in one transaction with the other updates of its partition
 * asked for in the same turn of the event loop. Answers the new ETag (undefined if the answer had none).
 */
export function updateIfMatch(
  table: TableClient,
  entity: TableEntity,
  mode: UpdateMode,
  etag: string,
): Promise<{ etag?: string }> {
  let coalescer = coalescers.get(table);
  if (!coalescer) coalescers.set(table, (coalescer = new UpdateCoalescer(table)));
  return coalescer.update(entity, mode, etag);
}
