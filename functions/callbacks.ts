/**
 * deliverCallback (queue callbacks): completion callbacks of jobs submitted with callback_url. A message
 * checks its job; while the job is not final it comes back later (1 s, 2 s, … at most 30 s), once it is,
 * the signed event is POSTed; a failed delivery is retried from a new message with exponential back-off,
 * and after CALLBACK_MAX_ATTEMPTS the registration is dead (GET /api/jobs/{id} shows it). It throws only
 * when storage fails (the host retries the message); a receiver's failure is recorded, never thrown.
 * callbackPoison (queue callbacks-poison): a message the host gave up on marks its registration dead.
 */
import { app, type InvocationContext } from '@azure/functions';
import { appSettings, STORAGE_CONNECTION } from '../shared/config';
import { appStorage } from '../shared/storage/clients';
import { resourceNames } from '../shared/storage/names';
import { handleCallbackPoison, processCallbackMessage } from '../shared/tasks/callbacks';

/** The message as bytes: its text reaches the handler exactly as it was enqueued (see functions/workers.ts). */
const asBytes = { dataType: 'binary' } as const;

const queueName = resourceNames().callbacksQueue;

app.storageQueue('deliverCallback', {
  queueName,
  connection: STORAGE_CONNECTION,
  ...asBytes,
  handler: async (message: unknown, context: InvocationContext) => {
    const deps = { storage: appStorage(), settings: appSettings(), log: (line: string) => context.warn(line) };
    context.log(`callback message: ${await processCallbackMessage(message, deps)}`);
  },
});

app.storageQueue('callbackPoison', {
  queueName: `${queueName}-poison`,
  connection: STORAGE_CONNECTION,
  ...asBytes,
  handler: async (message: unknown, context: InvocationContext) => {
    await handleCallbackPoison(message, { storage: appStorage(), log: (line: string) => context.warn(line) });
  },
});
