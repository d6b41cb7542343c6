/**
 * npm run bench -- filters [--images DIR] [--iterations N] [--filters a,b] [--json]
 *                          [--compare-peer [--peer-script PATH] [--python PATH]]
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

const USAGE = `usage: npm run bench -- filters [--images DIR] [--iterations N] [--filters a,b,...] [--json]
                              [--compare-peer] [--peer-script PATH] [--python PATH]
filters: ${knownBenchFilters().join(', ')} (default: all; with --compare-peer: ${PEER_FILTERS.join(', ')})`;

class UsageError extends Error {}

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
    throw new UsageError(`expected the benchmark name 'filters' but received ${positionals.join(' ') || 'nothing'}`);
  const iterations = Number(values.iterations);
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > 1000)
    throw new UsageError(
      `expected --iterations to be an integer between 1 and 1000 but received '${values.iterations}'`,
    );
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

async function imagesDir(opts: Options): Promise<string> {
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
  let opts: Options;
  try {
    opts = parse(argv);
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    return 2;
  }
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
