/**
 * Capabilities as data: each row is a class of work with its own queue, worker function,
 * poison queue and KEDA ScaledObject. Rows are ordered from cheapest to most expensive; a task
 * goes to the most expensive capability among its filters, so every worker can run every task
 * it receives. Adding a capability is adding a row (and naming it in some filter modules).
 *
 * Which filter is heavy is measured, not guessed: see docs/capabilities.md for the costs
 * (`npm run bench -- filters`) behind the split.
 */
/*
 * What one worker process completes per minute when it is kept busy: the default service rate of the scaling
 * advice until the worker registry has measured one. Measured, not guessed: `npm run bench -- e2e` on the sample
 * set (queued tasks/s × 60, median of 3 rounds), one worker on 2 vCPU with Azurite on the same cores, so a
 * deployment with remote storage does at least this. On another VM size, run the bench there and set
 * WORKER_TASKS_PER_MIN (e.g. `light=1800,heavy=1500`).
 */
const LIGHT_TASKS_PER_MIN = 1800;
const HEAVY_TASKS_PER_MIN = 1700;

export const CAPABILITIES = [
  {
    name: 'light',
    queue: 'tasks-light',
    description: 'per-pixel and geometry work: under 1.3× the cost of decoding and encoding the image',
    // A light task takes tens of milliseconds: one replica (12 slots) drains 20 messages in under a second.
    scaling: { queueLength: 20, activationQueueLength: 0, minReplicas: 0, maxReplicas: 10 },
    capacity: { tasksPerMinPerWorker: LIGHT_TASKS_PER_MIN },
  },
  {
    name: 'heavy',
    queue: 'tasks-heavy',
    description: 'neighbourhood and colour-space work (blur, sharpen, edges, median, hue, …): 1.3× to 12× that cost',
    // Up to 12× a light task: a replica per 5 waiting messages (KEDA's default) keeps the wait short.
    scaling: { queueLength: 5, activationQueueLength: 0, minReplicas: 0, maxReplicas: 10 },
    capacity: { tasksPerMinPerWorker: HEAVY_TASKS_PER_MIN },
  },
] as const;

/**
 * How a capability's workers scale. KEDA's ScaledObject for the capability is generated from it
 * (infra/k8s, `npm run k8s`), and the metrics snapshot's scaling advice uses the same figures, so
 * `keda_replicas` there is what the cluster does.
 * - queueLength: KEDA azure-queue target, messages per replica
 * - activationQueueLength: at or below it, zero replicas stay zero
 * - minReplicas / maxReplicas: KEDA's minReplicaCount / maxReplicaCount
 */
export interface CapabilityScaling {
  readonly queueLength: number;
  readonly activationQueueLength: number;
  readonly minReplicas: number;
  readonly maxReplicas: number;
}

export type CapabilityName = (typeof CAPABILITIES)[number]['name'];
export type Capability = (typeof CAPABILITIES)[number];

export const poisonQueueOf = (queue: string): string => `${queue}-poison`;

/** `light` → `Light`: worker and poison functions are named process<Cap> and poison<Cap>. */
export function functionSuffix(capability: CapabilityName): string {
  return capability.charAt(0).toUpperCase() + capability.slice(1);
}

/** The queue-triggered function that runs a capability's tasks. */
export const workerFunctionName = (capability: CapabilityName): string => `process${functionSuffix(capability)}`;

/** The function that takes a capability's poison messages. */
export const poisonFunctionName = (capability: CapabilityName): string => `poison${functionSuffix(capability)}`;
