/** Routing: which capability (and so which queue) a pipeline goes to. */
import { FILTERS } from '../imaging/filters';
import {
  CAPABILITIES,
  poisonQueueOf,
  type Capability,
  type CapabilityScaling,
  type CapabilityName,
} from '../capabilities';

/** The capability a pipeline needs: the most expensive among its filters (the cheapest when there are none). */
export function capabilityFor(filterNames: readonly string[]): Capability {
  let rank = 0;
  for (const name of filterNames) {
    const filter = FILTERS.get(name);
    if (!filter) throw new Error(`capabilityFor: unknown filter '${name}' (specs are validated before routing)`);
    rank = Math.max(
      rank,
      CAPABILITIES.findIndex((c) => c.name === filter.capability),
    );
  }
  return CAPABILITIES[rank];
}

export interface CapabilityRow {
  readonly name: CapabilityName;
  readonly queue: string;
  readonly poison_queue: string;
  readonly description: string;
  readonly scaling: CapabilityScaling;
  readonly filters: readonly string[];
}

/** The table as the API and docs show it: capability → queue → filters. */
export function capabilityTable(): readonly CapabilityRow[] {
  return CAPABILITIES.map((c) => ({
    name: c.name,
    queue: c.queue,
    poison_queue: poisonQueueOf(c.queue),
    description: c.description,
    scaling: c.scaling,
    filters: [...FILTERS.values()].filter((f) => f.capability === c.name).map((f) => f.name),
  }));
}
