/**
 * `metrics` prints the latest snapshot (a row per capability, then each recommendation's
 * reason); `monitor` reprints it every few seconds until Ctrl-C or --count refreshes.
 */
import type { Command } from 'commander';
import { ApiError, ApiUnreachable, type ApiClient } from '../api';
import type { CliContext } from '../context';
import { fixed, ms, percent, table } from '../format';
import { isTty, sleep, writeLine, type CliIo } from '../io';
import { integerIn, positiveNumber } from '../parse';
import type { Snapshot } from '../types';

const CLEAR_SCREEN = '\x1b[2J\x1b[H';

export function renderSnapshot(s: Snapshot): string {
  const window = s.window_s ? ` (window ${s.window_s} s)` : '';
  const header = `snapshot ${s.timestamp}${window} · host cpu ${s.host.cpu_percent}% · memory ${s.host.memory_percent}% (${s.host.memory_used_mb} MB)`;
  const entries = Object.entries(s.capabilities);
  const rows = entries.map(([name, m]) => [
    name,
    m.queue_length,
    m.poison_length,
    `${m.workers.active}/${m.workers.busy}`,
    percent(m.workers.utilization),
    fixed(m.tasks.throughput_per_min, 1),
    ms(m.tasks.latency_ms.p95),
    percent(m.tasks.success_rate),
    m.recommendation.action,
    m.recommendation.recommended_workers,
    m.recommendation.keda_replicas,
    m.recommendation.urgency,
  ]);
  const head = [
    'capability',
    'queue',
    'poison',
    'active/busy',
    'util',
    'tasks/min',
    'p95',
    'success',
    'action',
    'recommended',
    'KEDA',
    'urgency',
  ];
  const reasons = entries.map(([name, m]) => `  ${name}: ${m.recommendation.reason}`);
  return [header, table(head, rows), 'reason:', ...reasons].join('\n');
}

export async function runMetrics(api: ApiClient, io: CliIo, opts: { json?: boolean }): Promise<number> {
  const snapshot = await api.get<Snapshot>('/metrics');
  writeLine(io.stdout, opts.json ? JSON.stringify(snapshot, null, 2) : renderSnapshot(snapshot));
  return 0;
}

export interface MonitorOptions {
  readonly interval: number;
  readonly count?: number;
}

/** Keeps going through failed refreshes (the app may be restarting); the exit code reflects the last one. */
export async function runMonitor(api: ApiClient, io: CliIo, opts: MonitorOptions): Promise<number> {
  const signal = io.interrupts();
  let lastOk = false;
  for (let refresh = 1; !signal.aborted; refresh++) {
    let body: string;
    try {
      body = renderSnapshot(await api.get<Snapshot>('/metrics'));
      lastOk = true;
    } catch (err) {
      if (!(err instanceof ApiError || err instanceof ApiUnreachable)) throw err;
      body = `error: ${err.message}`;
      lastOk = false;
    }
    const progress = opts.count ? ` · refresh ${refresh}/${opts.count}` : '';
    const header = `image-pipeline monitor · ${api.baseUrl} · every ${opts.interval} s${progress} · Ctrl-C exits`;
    io.stdout.write(`${isTty(io.stdout) ? CLEAR_SCREEN : ''}${header}\n${body}\n\n`);
    if (opts.count !== undefined && refresh >= opts.count) return lastOk ? 0 : 1;
    await sleep(opts.interval * 1000, signal);
  }
  return 0; // Ctrl-C is how a monitor is meant to end
}

export function registerMetrics(program: Command, ctx: CliContext): void {
  program
    .command('metrics')
    .description('the latest metrics snapshot: queues, workers, throughput, latency and scaling advice per capability')
    .option('--json', 'print the snapshot as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => ctx.exit(await runMetrics(ctx.api(cmd), ctx.io, opts)));

  program
    .command('monitor')
    .description('refresh the metrics view every --interval seconds until Ctrl-C')
    .option('--interval <seconds>', 'seconds between refreshes', positiveNumber, 2)
    .option('--count <n>', 'stop after n refreshes', integerIn(1, 1_000_000))
    .action(async (opts: MonitorOptions, cmd: Command) => ctx.exit(await runMonitor(ctx.api(cmd), ctx.io, opts)));
}
