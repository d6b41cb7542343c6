/**
 * One queue worker and one poison function per capability, registered from the capability
 * table (a new capability needs no code here).
 * - process<Cap> (queue tasks-<cap>): runs the task once per claim; permanent failures mark it
 *   failed and return, transient ones throw so the host retries, then moves the message to poison;
 *   a copy of a task another live delivery is running is put back for later (deferred).
 * - poison<Cap> (queue tasks-<cap>-poison): marks the task failed/worker_failure and keeps
 *   the message as a dead letter for GET /api/dead-letters and requeue.
 * Both take their message as bytes (dataType binary), so its text reaches storage exactly as sent.
 * The process registers in Table `workers` at app start and heartbeats its counters until it stops.
 */
import { app, type InvocationContext } from '@azure/functions';
import { CAPABILITIES, poisonFunctionName, workerFunctionName } from '../shared/capabilities';
import { STORAGE_CONNECTION } from '../shared/config';
import { deadAfterMs } from '../shared/metrics/worker-registry';
import { isClaimRunning, startHeartbeat, workerStats } from '../shared/metrics/worker-stats';
import { appStorage } from '../shared/storage/clients';
import { resourceNames } from '../shared/storage/names';
import { deliveryOf, taskIdOf } from '../shared/tasks/message';
import { handlePoisonMessage } from '../shared/tasks/poison';
import type { TaskRecord } from '../shared/tasks/store';
import { processTaskMessage } from '../shared/tasks/worker';

const names = resourceNames();
/** The Node library would hand over JSON.parse(text); bytes keep the text as it was enqueued. */
const asBytes = { dataType: 'binary' } as const;

for (const { name: capability } of CAPABILITIES) {
  app.storageQueue(workerFunctionName(capability), {
    queueName: names.queueOf(capability),
    connection: STORAGE_CONNECTION,
    ...asBytes,
    handler: async (message: unknown, context: InvocationContext) => {
      const storage = appStorage();
      const deps = {
        storage,
        capability,
        log: (line: string) => context.warn(line),
        isClaimRunning: (claim: TaskRecord) => isClaimRunning(storage, claim),
        deadAfterMs: deadAfterMs(),
      };
      const outcome = await workerStats.track(capability, () => processTaskMessage(message, deps), taskIdOf(message));
      context.log(`task message ${deliveryOf(context.triggerMetadata, context.invocationId).id}: ${outcome}`);
    },
  });
  app.storageQueue(poisonFunctionName(capability), {
    queueName: names.poisonQueueOf(capability),
    connection: STORAGE_CONNECTION,
    ...asBytes,
    handler: async (message: unknown, context: InvocationContext) => {
      const delivery = deliveryOf(context.triggerMetadata, context.invocationId);
      await handlePoisonMessage(message, { storage: appStorage(), capability }, delivery);
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
