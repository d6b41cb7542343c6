/**
 * Capabilities as data: each row is a class of work with its own queue, worker function,
 * poison queue and KEDA ScaledObject. Rows are ordered from cheapest to most expensive; a task
 * goes to the most expensive capability among its filters, so every worker can run every task
 * it receives. Adding a capability is adding a row (and naming it in some filter modules).
 *
 * Which filter is heavy is measured, not guessed: see docs/capabilities.md for the costs
 * (`npm run bench -- filters`) behind the split.
 */
export const CAPABILITIES = [
  { name: 'light', queue: 'tasks-light', description: 'per-pixel and geometry work: under 1.3× the cost of decoding and encoding the image' },
  { name: 'heavy', queue: 'tasks-heavy', description: 'neighbourhood and colour-space work (blur, sharpen, edges, median, hue, …): 1.3× to 12× that cost' },
] as const;

export type CapabilityName = (typeof CAPABILITIES)[number]['name'];
export type Capability = (typeof CAPABILITIES)[number];

export const poisonQueueOf = (queue: string): string => `${queue}-poison`;
