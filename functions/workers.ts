/**
 * One queue worker and one poison function per capability, registered from the capability
 * table (a new capability needs no code here).
 * - process<Cap> (queue tasks-<cap>): runs the task; permanent failures mark it failed and
 *   return, transient ones throw so the host retries, then moves the message to poison.
 * - poison<Cap> (queue tasks-<cap>-poison): marks the task failed/worker_failure and keeps
 *   the message as a dead letter for GET /api/dead-letters and requeue.
 * The process registers in Table `workers` at app start and heartbeats its counters until it stops.
 */
import { app, type InvocationContext } from '@azure/functions';
import { resourceNames, STORAGE_CONNECTION } from '../shared/config';
import { appStorage } from '../shared/storage/clients';
import { CAPABILITIES } from '../shared/tasks/capabilities';
import { handlePoisonMessage, processTaskMessage } from '../shared/tasks/worker';
import { startHeartbeat, workerStats } from '../shared/metrics/worker-stats';
import { functionSuffix } from '../shared/tasks/routing';

const names = resourceNames();

for (const { name: capability } of CAPABILITIES) {
  app.storageQueue(`process${functionSuffix(capability)}`, {
    queueName: names.queueOf(capability),
    connection: STORAGE_CONNECTION,
    handler: async (message: unknown, context: InvocationContext) => {
      const taskId =
        typeof (message as { task_id?: unknown } | null)?.task_id === 'string'
          ? (message as { task_id: string }).task_id
          : null;
      const outcome = await workerStats.track(
        capability,
        () => processTaskMessage(message, { storage: appStorage(), capability, log: (m) => context.warn(m) }),
        taskId,
      );
      context.log(`task message ${String(context.triggerMetadata?.id ?? '')}: ${outcome}`);
    },
  });
  app.storageQueue(`poison${functionSuffix(capability)}`, {
    queueName: names.poisonQueueOf(capability),
    connection: STORAGE_CONNECTION,
    handler: async (message: unknown, context: InvocationContext) => {
      const meta = context.triggerMetadata ?? {};
      await handlePoisonMessage(
        message,
        { storage: appStorage(), capability },
        {
          id: String(meta.id ?? context.invocationId),
          dequeueCount: typeof meta.dequeueCount === 'number' ? meta.dequeueCount : null,
        },
      );
    },
  });
}

let heartbeat: ReturnType<typeof startHeartbeat> | undefined;
app.hook.appStart(() => {
  heartbeat = startHeartbeat(appStorage(), workerStats, undefined, (line) => console.warn(line));
});
app.hook.appTerminate(async () => {
  await heartbeat?.stop();
});
