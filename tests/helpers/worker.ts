/** A light worker's dependencies as the claim tests use them: a worker id of its own and a short dead-after. */
import type { Storage } from '../../shared/storage/clients';
import type { WorkerDeps } from '../../shared/tasks/worker';

export const workerDeps = (storage: Storage, extra: Partial<WorkerDeps> = {}): WorkerDeps => ({
  storage,
  capability: 'light',
  workerId: 'w-new',
  deadAfterMs: 3000,
  ...extra,
});
