/**
 * GET /api/dead-letters and POST /api/dead-letters/{capability}/requeue. The list shows everything
 * that ran out of retries: the dead letters the poison functions recorded, and the messages still in
 * each poison queue (with their raw text when it is not base64, which no function can take).
 */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { CAPABILITIES, type CapabilityName } from '../capabilities';
import { AppError, ValidationError } from '../errors';
import type { Storage } from '../storage/clients';
import { DeadLetterStore, peekPoisonQueue, requeueDeadLetters } from '../tasks/dead-letters';
import { fieldProblem } from '../validation';
import { handled, json } from './respond';

function capabilityParam(value: string | undefined): CapabilityName {
  const found = CAPABILITIES.find((c) => c.name === value);
  if (found) return found.name;
  const expected = `one of ${CAPABILITIES.map((c) => c.name).join(', ')}`;
  throw new ValidationError([fieldProblem('capability', expected, value)]);
}

export function deadLetterRoutes(getStorage: () => Storage) {
  return {
    deadLetters: handled(async (): Promise<HttpResponseInit> => {
      const storage = getStorage();
      await storage.ensureResources();
      const letters = new DeadLetterStore(storage.deadLetters);
      const capabilities = await Promise.all(
        CAPABILITIES.map(async (c) => {
          const [{ approximateMessagesCount = 0 }, poisonMessages, deadLetters] = await Promise.all([
            storage.poisonQueue(c.name).getProperties(),
            peekPoisonQueue(storage, c.name),
            letters.list(c.name),
          ]);
          return {
            capability: c.name,
            poison_queue: storage.names.poisonQueueOf(c.name),
            waiting_in_poison_queue: approximateMessagesCount,
            poison_messages: poisonMessages,
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
      const result = await requeueDeadLetters(storage, capability);
      if (result.requeued === 0 && result.skipped.length === 0) {
        throw new AppError('not_found', `No dead letters for ${capability}`);
      }
      return json(200, result);
    }),
  };
}
