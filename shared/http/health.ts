/** GET /api/health (storage probes) and GET /api/filters (the filter catalog and capability table). */
import type { HttpResponseInit } from '@azure/functions';
import { version } from '../../package.json';
import { CAPABILITIES } from '../capabilities';
import { appSettings, type Settings } from '../config';
import { filterCatalog } from '../imaging/catalog';
import { redactSecrets } from '../redact';
import type { Storage } from '../storage/clients';
import { capabilityTable } from '../tasks/routing';
import { handled, json } from './respond';

const HEALTH_TIMEOUT_MS = 3000;

/** One storage probe, cancelled (retries included) when it has not answered in time. */
async function check(probe: (abortSignal: AbortSignal) => Promise<unknown>): Promise<string> {
  try {
    await probe(AbortSignal.timeout(HEALTH_TIMEOUT_MS));
    return 'ok';
  } catch (err) {
    if ((err as { name?: string }).name === 'AbortError') return `error: no answer in ${HEALTH_TIMEOUT_MS} ms`;
    return `error: ${redactSecrets(err instanceof Error ? err.message.split('\n')[0] : String(err))}`;
  }
}

export function healthRoutes(getStorage: () => Storage, settings: Settings = appSettings()) {
  return {
    health: handled(async (): Promise<HttpResponseInit> => {
      const storage = getStorage();
      const [blob, queue, table] = await Promise.all([
        check((abortSignal) => storage.images.createIfNotExists({ abortSignal })),
        check((abortSignal) => storage.queue(CAPABILITIES[0].name).createIfNotExists({ abortSignal })),
        check((abortSignal) => storage.tasks.createTable({ abortSignal })),
      ]);
      const checks = { blob, queue, table };
      const healthy = Object.values(checks).every((c) => c === 'ok');
      return json(healthy ? 200 : 503, { status: healthy ? 'ok' : 'unavailable', checks, version });
    }),

    filters: handled(() => json(200, { filters: filterCatalog(settings), capabilities: capabilityTable() })),
  };
}
