/**
 * npm run bench -- filters [--images DIR] [--iterations N] [--filters a,b] [--json]
 *                          [--compare-peer [--peer-script PATH] [--python PATH]]
 * npm run bench -- e2e [--images DIR] [--tasks N] [--rounds N] [--pipelines light,heavy]
 *                      [--raw-concurrency N] [--json]
 *
 * Without --images it benchmarks the generated sample set (making it first if needed).
 * --json prints exactly one JSON object on stdout; --compare-peer measures the original
 * system's six filters against Pillow/OpenCV, interleaved filter by filter in one run.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { generateSamples } from '../samples';
import { SAMPLES_DIR } from '../paths';
import {
  BASELINE,
  benchFilters,
  knownBenchFilters,
  loadImages,
  PEER_FILTERS,
  timeFilter,
  toolName,
  type BenchResult,
} from './filters';
import { DEFAULT_PEER_SCRIPT, runPeer } from './peer';
import { benchE2e, E2E_PIPELINES, type E2eResult } from './e2e';

const USAGE = `usage: npm run bench -- filters [--images DIR] [--iterations N] [--filters a,b,...] [--json]
                              [--compare-peer] [--peer-script PATH] [--python PATH]
filters: ${knownBenchFilters().join(', ')} (default: all; with --compare-peer: ${PEER_FILTERS.join(', ')})
       npm run bench -- e2e [--images DIR] [--tasks N] [--rounds N] [--pipelines ${E2E_PIPELINES.map((p) => p.name).join(',')}]
                            [--raw-concurrency N] [--json]`;

class UsageError extends Error {}

/** The options, or undefined once what was wrong with them and the usage are printed (exit code 2). */
function parsed<T>(parser: (argv: string[]) => T, argv: string[]): T | undefined {
  try {
    return parser(argv);
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    return undefined;
  }
}

function integerOption(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`expected --${name} to be an integer between ${min} and ${max} but received '${value}'`);
  return n;
}

/** No colours: the tables are pasted into READMEs and issue notes. */
const PLAIN = { head: [], border: [] };

interface Options {
  images?: string;
  iterations: number;
  filters?: string[];
  json: boolean;
  comparePeer: boolean;
  peerScript: string;
  python: string;
}

function parse(argv: string[]): Options {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      images: { type: 'string' },
      iterations: { type: 'string', default: '5' },
      filters: { type: 'string' },
      json: { type: 'boolean', default: false },
      'compare-peer': { type: 'boolean', default: false },
      'peer-script': { type: 'string', default: DEFAULT_PEER_SCRIPT },
      python: { type: 'string', default: '/usr/bin/python3' },
    },
  });
  if (positionals.length !== 1 || positionals[0] !== 'filters')
    throw new UsageError(
      `expected the benchmark name 'filters' or 'e2e' but received ${positionals.join(' ') || 'nothing'}`,
    );
  const iterations = integerOption('iterations', values.iterations, 1, 1000);
  const filters = values.filters
    ?.split(',')
    .map((f) => f.trim())
    .filter(Boolean);
  const known = knownBenchFilters();
  const unknown = filters?.filter((f) => !known.includes(f)) ?? [];
  if (unknown.length)
    throw new UsageError(`unknown filter(s) ${unknown.join(', ')}: expected some of ${known.join(', ')}`);
  return {
    images: values.images,
    iterations,
    filters,
    json: values.json,
    comparePeer: values['compare-peer'],
    peerScript: path.resolve(values['peer-script']),
    python: values.python,
  };
}

interface E2eCliOptions {
  images?: string;
  tasks: number;
  rounds: number;
  pipelines: string[];
  rawConcurrency: number;
  json: boolean;
}

function parseE2e(argv: string[]): E2eCliOptions {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      images: { type: 'string' },
      tasks: { type: 'string', default: '100' },
      rounds: { type: 'string', default: '3' },
      pipelines: { type: 'string', default: E2E_PIPELINES.map((p) => p.name).join(',') },
      'raw-concurrency': { type: 'string', default: process.env.UV_THREADPOOL_SIZE ?? '4' },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) throw new UsageError(`unexpected arguments: ${positionals.slice(1).join(' ')}`);
  const pipelines = values.pipelines
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const known = E2E_PIPELINES.map((p) => p.name);
  const unknown = pipelines.filter((p) => !known.includes(p));
  if (unknown.length || pipelines.length === 0)
    throw new UsageError(`expected --pipelines among ${known.join(', ')} but received '${values.pipelines}'`);
  return {
    images: values.images,
    tasks: integerOption('tasks', values.tasks, 1, 100000),
    rounds: integerOption('rounds', values.rounds, 1, 100),
    pipelines,
    rawConcurrency: integerOption('raw-concurrency', values['raw-concurrency'], 1, 1024),
    json: values.json,
  };
}

/** The WORKER_TASKS_PER_MIN value this run measured: each capability's queued tasks/s × 60. */
export function workerTasksPerMin(result: E2eResult): string {
  return result.pipelines.map((p) => `${p.capability}=${Math.round(p.queued_tasks_per_s * 60)}`).join(',');
}

function printE2e(result: E2eResult): void {
  console.log(
    `${result.tasks} tasks per job over ${result.images.length} images (${result.images.join(', ')}); ${result.cores} cores; ` +
      `median of ${result.rounds} rounds; raw = processImage in one process, ${result.raw_concurrency} at a time; ` +
      `queued = POST /api/jobs → last task done, local host + Azurite on the same cores`,
  );
  const table = new Table({ style: PLAIN, head: ['pipeline', 'raw tasks/s', 'queued tasks/s', 'queued ÷ raw'] });
  for (const p of result.pipelines)
    table.push([
      `${p.pipeline} (${p.filters.map((f) => String(f.name)).join(', ')})`,
      p.raw_tasks_per_s.toFixed(2),
      p.queued_tasks_per_s.toFixed(2),
      `${p.ratio.toFixed(2)}×`,
    ]);
  console.log(table.toString());
  const last = (p: E2eResult['pipelines'][number]) => p.rounds[p.rounds.length - 1];
  console.log(
    'CPU ms per task in the last round: raw = the raw run; the rest = the queued run (worker = the host process, ' +
      'storage = Azurite, bench = this process, other = the rest of the machine, idle = cores × wall − busy)',
  );
  const budget = new Table({
    style: PLAIN,
    head: ['pipeline', 'raw', 'worker', 'storage', 'bench', 'other', 'idle', 'worker RSS MB start / ¼ ½ ¾ / end'],
  });
  for (const p of result.pipelines) {
    const r = last(p);
    const c = r.cpu_ms_per_task;
    budget.push([
      p.pipeline,
      r.raw_cpu_ms_per_task,
      c.worker,
      c.storage,
      c.bench,
      c.other,
      c.idle,
      `${r.rss_mb.start} / ${r.rss_mb.quarters.join(' ')} / ${r.rss_mb.end}`,
    ]);
  }
  console.log(budget.toString());
  console.log(
    "Storage requests per task (one more job per pipeline, on an Azurite writing its access log, which the timed rounds' Azurite does not):",
  );
  const kinds = [...new Set(result.pipelines.flatMap((p) => Object.keys(p.requests_per_task)))].sort();
  const requests = new Table({ style: PLAIN, head: ['request', ...result.pipelines.map((p) => p.pipeline)] });
  for (const kind of kinds)
    requests.push([kind, ...result.pipelines.map((p) => (p.requests_per_task[kind] ?? 0).toFixed(2))]);
  requests.push(['total', ...result.pipelines.map((p) => p.requests_total_per_task.toFixed(2))]);
  console.log(requests.toString());
  console.log(`Host peak RSS (VmHWM): ${result.host.peak_rss_mb} MB`);
  console.log(
    `One worker's capacity on this machine (queued tasks/s × 60): WORKER_TASKS_PER_MIN=${workerTasksPerMin(result)}`,
  );
}

async function mainE2e(argv: string[]): Promise<number> {
  const opts = parsed(parseE2e, argv);
  if (!opts) return 2;
  const dir = await imagesDir(opts);
  const result = await benchE2e({
    images: await loadImages(dir),
    tasks: opts.tasks,
    rounds: opts.rounds,
    pipelines: E2E_PIPELINES.filter((p) => opts.pipelines.includes(p.name)),
    rawConcurrency: opts.rawConcurrency,
    log: opts.json ? undefined : (line) => console.error(line),
  });
  if (opts.json)
    console.log(JSON.stringify({ images_dir: dir, ...result, worker_tasks_per_min: workerTasksPerMin(result) }));
  else printE2e(result);
  return 0;
}

async function imagesDir(opts: { images?: string }): Promise<string> {
  if (opts.images) return path.resolve(opts.images);
  await generateSamples(SAMPLES_DIR);
  return SAMPLES_DIR;
}

function printTimings(result: BenchResult): void {
  const images = Object.values(result.filters)[0]?.images ?? [];
  const floor = result.filters[BASELINE]?.total_ms;
  const table = new Table({
    style: PLAIN,
    head: [
      'filter',
      ...images.map((i) => `${i.image}\n${i.width}×${i.height}`),
      'total ms',
      ...(floor ? ['× floor'] : []),
    ],
  });
  for (const [name, timing] of Object.entries(result.filters)) {
    const relative = floor ? [(timing.total_ms / floor).toFixed(2)] : [];
    table.push([name, ...timing.images.map((i) => i.median_ms.toFixed(1)), timing.total_ms.toFixed(1), ...relative]);
  }
  console.log(
    `${result.tool}, median of ${result.iterations} runs per image (ms): decode + filter + JPEG q80 encode; '${BASELINE}' = decode + encode only (the floor)`,
  );
  console.log(table.toString());
}

const geomean = (values: number[]) => Math.exp(values.reduce((s, v) => s + Math.log(v), 0) / values.length);

async function comparePeer(opts: Options, dir: string): Promise<void> {
  const filters = opts.filters ?? [...PEER_FILTERS];
  const images = await loadImages(dir);
  const ours: BenchResult = { tool: toolName(), iterations: opts.iterations, filters: {} };
  let peer: BenchResult | undefined;
  // Interleaved filter by filter, so drift in machine load hits both sides alike.
  for (const filter of filters) {
    ours.filters[filter] = await timeFilter(filter, images, opts.iterations);
    const theirs = await runPeer([filter], {
      script: opts.peerScript,
      python: opts.python,
      images: dir,
      iterations: opts.iterations,
    });
    peer = peer ? { ...peer, filters: { ...peer.filters, ...theirs.filters } } : theirs;
  }
  const speedups = Object.fromEntries(
    filters.map((f) => [f, Math.round((peer!.filters[f].total_ms / ours.filters[f].total_ms) * 100) / 100]),
  );
  const mean = Math.round(geomean(Object.values(speedups)) * 100) / 100;
  if (opts.json) {
    console.log(JSON.stringify({ images: dir, sharp: ours, peer, speedups, geomean_speedup: mean }));
    return;
  }
  const table = new Table({ style: PLAIN, head: ['filter', 'sharp total ms', 'peer total ms', 'speed-up'] });
  for (const f of filters)
    table.push([
      f,
      ours.filters[f].total_ms.toFixed(1),
      peer!.filters[f].total_ms.toFixed(1),
      `${speedups[f].toFixed(2)}×`,
    ]);
  table.push(['geometric mean', '', '', `${mean.toFixed(2)}×`]);
  console.log(
    `${ours.tool} vs ${peer!.tool}; ${images.length} images in ${dir}; median of ${opts.iterations} runs per image, summed`,
  );
  console.log(table.toString());
}

export async function main(argv: string[]): Promise<number> {
  if (argv.find((a) => !a.startsWith('-')) === 'e2e') return mainE2e(argv);
  const opts = parsed(parse, argv);
  if (!opts) return 2;
  const dir = await imagesDir(opts);
  if (opts.comparePeer) {
    await comparePeer(opts, dir);
    return 0;
  }
  const result = await benchFilters(opts.filters ?? knownBenchFilters(), await loadImages(dir), opts.iterations);
  if (opts.json) console.log(JSON.stringify({ images: dir, ...result }));
  else printTimings(result);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exitCode = 1;
    },
  );
}
