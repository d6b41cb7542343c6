/** Health, the filter catalog, dead letters and requeue. */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { AppError, ValidationError } from '../errors';
import { filterCatalog } from '../imaging/catalog';
import { currentLimits } from '../imaging/limits';
import type { Storage } from '../storage/clients';
import { decodeMessageText, enqueue } from '../storage/queue';
import { CAPABILITIES, type CapabilityName } from '../tasks/capabilities';
import { DeadLetterStore } from '../tasks/dead-letters';
import { capabilityTable } from '../tasks/routing';
import { TaskStore } from '../tasks/store';
import { problem as fieldProblem } from '../validation';
import { handled, json } from './respond';
import { version } from '../../package.json';

const HEALTH_TIMEOUT_MS = 3000;

/** One storage probe, cancelled (retries included) when it has not answered in time. */
async function check(probe: (abortSignal: AbortSignal) => Promise<unknown>): Promise<string> {
  try {
    await probe(AbortSignal.timeout(HEALTH_TIMEOUT_MS));
    return 'ok';
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    return `error: ${(err as { name?: string }).name === 'AbortError' ? `no answer in ${HEALTH_TIMEOUT_MS} ms` : message}`;
  }
}

function capabilityParam(value: string | undefined): CapabilityName {
  const found = CAPABILITIES.find((c) => c.name === value);
  if (!found)
    throw new ValidationError([
      fieldProblem('capability', `one of ${CAPABILITIES.map((c) => c.name).join(', ')}`, value),
    ]);
  return found.name;
}

export function adminRoutes(getStorage: () => Storage) {
  return {
    health: handled(async (): Promise<HttpResponseInit> => {
      const storage = getStorage();
      const [blob, queue, table] = await Promise.all([
        check((abortSignal) => storage.images.createIfNotExists({ abortSignal })),
        check((abortSignal) => storage.queue(CAPABILITIES[0].name).createIfNotExists({ abortSignal })),
        check((abortSignal) => storage.tasks.createTable({ abortSignal })),
      ]);
      const checks = { blob, queue, table };
      const healthy = Object.values(checks).every((c) => c === 'ok');
      return json(healthy ? 200 : 503, { status: healthy ? 'ok' : 'unavailable', checks, version });
    }),

    filters: handled(async (): Promise<HttpResponseInit> =>
      json(200, { filters: filterCatalog(currentLimits()), capabilities: capabilityTable() }),
    ),

    deadLetters: handled(async (): Promise<HttpResponseInit> => {
      const storage = getStorage();
      await storage.ensureResources();
      const letters = new DeadLetterStore(storage.deadLetters);
      const capabilities = await Promise.all(
        CAPABILITIES.map(async (c) => {
          const { approximateMessagesCount = 0 } = await storage.poisonQueue(c.name).getProperties();
          const deadLetters = await letters.list(c.name);
          return {
            capability: c.name,
            poison_queue: storage.names.poisonQueueOf(c.name),
            waiting_in_poison_queue: approximateMessagesCount,
            count: deadLetters.length,
            dead_letters: deadLetters,
          };
        }),
      );
      return json(200, { capabilities });
    }),

    requeue: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const capability = capabilityParam(request.params.capability);
      const storage = getStorage();
      await storage.ensureResources();
      const letters = new DeadLetterStore(storage.deadLetters);
      const tasks = new TaskStore(storage.tasks);
      const requeued: string[] = [];
      const skipped: { id: string; reason: string }[] = [];
      for (const letter of await letters.list(capability)) {
        const task = letter.task_id
          ? await tasks.transition(letter.task_id, (t) =>
              t.status === 'succeeded'
                ? undefined
                : { status: 'queued', completed_at: null, failure_type: null, failure_reason: null, error: null },
            )
          : undefined;
        if (!task || task.status === 'succeeded') {
          skipped.push({
            id: letter.id,
            reason: task ? 'task already succeeded' : `no task to run (${letter.reason})`,
          });
          if (task) await letters.remove(capability, letter.id);
          continue;
        }
        await enqueue(storage.queue(capability), letter.message);
        await letters.remove(capability, letter.id);
        requeued.push(letter.id);
      }
      requeued.push(...(await drainPoisonQueue(storage, capability)));
      if (requeued.length === 0 && skipped.length === 0)
        throw new AppError('not_found', `No dead letters for ${capability}`);
      return json(200, { capability, queue: storage.names.queueOf(capability), requeued: requeued.length, skipped });
    }),
  };
}

/** Messages still sitting in the poison queue (the poison function has not run yet) go back too. */
async function drainPoisonQueue(storage: Storage, capability: CapabilityName): Promise<string[]> {
  const moved: string[] = [];
  for (;;) {
    const { receivedMessageItems: batch } = await storage
      .poisonQueue(capability)
      .receiveMessages({ numberOfMessages: 32, visibilityTimeout: 60 });
    if (batch.length === 0) return moved;
    for (const message of batch) {
      await enqueue(storage.queue(capability), decodeMessageText(message.messageText));
      await storage.poisonQueue(capability).deleteMessage(message.messageId, message.popReceipt);
      moved.push(message.messageId);
    }
  }
}
