/**
 * Messages that ran out of retries (or were garbled) are kept in Table `deadletters`,
 * partitioned by capability, until someone requeues them: the poison function records them
 * here because the host deletes a poison message once its function succeeds.
 */
import type { TableClient } from '@azure/data-tables';
import type { CapabilityName } from './capabilities';

export interface DeadLetter {
  readonly capability: CapabilityName;
  readonly id: string;
  readonly task_id: string | null;
  readonly reason: string;
  readonly message: string;
  readonly dequeue_count: number | null;
  readonly failed_at: string;
}

type DeadLetterEntity = {
  partitionKey: string;
  rowKey: string;
  task_id?: string;
  reason: string;
  message: string;
  dequeue_count?: number;
  failed_at: string;
};

export class DeadLetterStore {
  constructor(private readonly table: TableClient) {}

  /** Keyed by task (or by message id for garbage), so a redelivered poison message is recorded once. */
  async record(letter: Omit<DeadLetter, 'failed_at'>, now = new Date()): Promise<void> {
    const entity: DeadLetterEntity = {
      partitionKey: letter.capability,
      rowKey: letter.id,
      reason: letter.reason,
      message: letter.message.slice(0, 32000),
      failed_at: now.toISOString(),
      ...(letter.task_id ? { task_id: letter.task_id } : {}),
      ...(letter.dequeue_count !== null ? { dequeue_count: letter.dequeue_count } : {}),
    };
    await this.table.upsertEntity(entity, 'Replace');
  }

  async list(capability: CapabilityName): Promise<DeadLetter[]> {
    const letters: DeadLetter[] = [];
    const query = this.table.listEntities<DeadLetterEntity>({
      queryOptions: { filter: `PartitionKey eq '${capability}'` },
    });
    for await (const e of query) {
      letters.push({
        capability,
        id: e.rowKey!,
        task_id: e.task_id ?? null,
        reason: e.reason,
        message: e.message,
        dequeue_count: e.dequeue_count ?? null,
        failed_at: e.failed_at,
      });
    }
    return letters.sort((a, b) => a.failed_at.localeCompare(b.failed_at));
  }

  async remove(capability: CapabilityName, id: string): Promise<void> {
    await this.table.deleteEntity(capability, id);
  }
}
