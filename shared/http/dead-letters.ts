/**
 * GET /api/dead-letters, POST /api/dead-letters/{capability}/requeue and, for one letter,
 * POST /api/dead-letters/{capability}/{id}/requeue. The list shows everything
 * that ran out of retries: the dead letters the poison functions recorded, and the messages still in
 * each poison queue (with their raw text when it is not base64, which no function can take).
 */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { CAPABILITIES, type CapabilityName } from '../capabilities';
import { AppError, ValidationError } from '../errors';
import type { Storage } from '../storage/clients';
import { DeadLetterStore, peekPoisonQueue, requeueDeadLetter, requeueDeadLetters } from '../tasks/dead-letters';
import { fieldProblem } from '../validation';
import { handled, json } from './respond';

function capabilityParam(value: string | undefined): CapabilityName {
  const found = CAPABILITIES.find((c) => c.name === value);
  if (found) return found.name;
  const expected = `one of ${CAPABILITIES.map((c) => c.name).join(', ')}`;
  throw new ValidationError([fieldProblem('capability', expected, value)]);
}

/** A dead letter's id as listed: a task id or a queue message id (never a table key's forbidden characters). */
const LETTER_ID = /^[A-Za-z0-9_-]{1,200}$/;

function letterIdParam(value: string | undefined): string {
  if (value !== undefined && LETTER_ID.test(value)) return value;
  throw new ValidationError([
    fieldProblem('id', "a dead letter's id as GET /api/dead-letters lists it (letters, digits, _ and -)", value),
  ]);
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

    requeueOne: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const capability = capabilityParam(request.params.capability);
      const id = letterIdParam(request.params.id);
      const storage = getStorage();
      await storage.ensureResources();
      const done = await requeueDeadLetter(storage, capability, id);
      switch (done.outcome) {
        case 'requeued':
          return json(200, done.result);
        case 'not_found':
          throw new AppError(
            'not_found',
            `No dead letter ${id} for ${capability} (already requeued, or never recorded; messages still waiting in the poison queue are requeued with POST /api/dead-letters/${capability}/requeue)`,
          );
        case 'task_not_failed':
          throw new AppError(
            'dead_letter_task_not_failed',
            `Dead letter ${id} was not requeued: ${done.reason}, so there is nothing to run again; the letter stays (the capability's requeue drops such letters)`,
          );
        case 'not_replayable':
          throw new AppError(
            'dead_letter_not_replayable',
            `Dead letter ${id} cannot run again: ${done.reason}; the letter stays so it can be read`,
          );
      }
    }),
  };
}
