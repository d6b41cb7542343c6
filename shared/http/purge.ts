/** DELETE /api/tasks: purge every task, its message, dead letter and result; images and metrics stay. */
import type { HttpResponseInit } from '@azure/functions';
import type { Storage } from '../storage/clients';
import { purgeTasks } from '../tasks/purge';
import { handled, json } from './respond';

export function purgeRoutes(getStorage: () => Storage) {
  return {
    purgeTasks: handled(async (): Promise<HttpResponseInit> => json(200, await purgeTasks(getStorage()))),
  };
}
