/** `check`: is the app up? Health, filter catalog and worker registry in one glance; exit 0 only when healthy. */
import type { Command } from 'commander';
import { ApiError, type ApiClient } from '../api';
import type { CliContext } from '../context';
import { report } from '../format';
import { writeLine, type CliIo } from '../io';
import type { FilterCatalog, Health, WorkerList } from '../types';

const LIVE = new Set(['idle', 'busy']);

/** 503 still carries the health document (which check failed), so it is read, not thrown. */
async function health(api: ApiClient): Promise<Health> {
  try {
    return await api.get<Health>('/health');
  } catch (err) {
    if (err instanceof ApiError && err.status === 503 && typeof err.body === 'object' && err.body !== null)
      return err.body as Health;
    throw err;
  }
}

export async function runCheck(api: ApiClient, io: CliIo): Promise<number> {
  const h = await health(api);
  const [catalog, workers] = await Promise.all([api.get<FilterCatalog>('/filters'), api.get<WorkerList>('/workers')]);
  const healthy = h.status === 'ok';
  const checks = Object.entries(h.checks)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const byCapability = catalog.capabilities.map((c) => `${c.name} ${c.filters.length}`).join(', ');
  const live = workers.workers.filter((w) => LIVE.has(w.status));
  const busy = live.filter((w) => w.status === 'busy').length;
  writeLine(
    io.stdout,
    report([
      ['API', api.baseUrl],
      ['health', `${h.status} (${checks})${h.version ? `, version ${h.version}` : ''}`],
      ['filters', `${catalog.filters.length} (${byCapability})`],
      [
        'workers',
        `${live.length} live, ${busy} busy, ${workers.count} registered${live.length === 0 ? ' (none live: queued tasks will wait)' : ''}`,
      ],
    ]),
  );
  return healthy ? 0 : 1;
}

export function registerCheck(program: Command, ctx: CliContext): void {
  program
    .command('check')
    .description('health, filter count and worker count; exit 0 when the app is healthy')
    .action(async (_opts: unknown, cmd: Command) => ctx.exit(await runCheck(ctx.api(cmd), ctx.io)));
}
