/**
 * npm run bench -- e2e: the queued path against raw sharp, in one run.
 *
 * For each pipeline (light: resize to 800 wide; heavy: blur radius (σ) 3; both JPEG q80) and each round:
 * - raw: the same processImage the worker runs, in this process, over the same images held in
 *   memory, a pool of `rawConcurrency` at a time (the libuv pool size sharp runs on);
 * - queued: one job of `tasks` tasks through the built local host and Azurite (both child processes,
 *   on the same cores), from the POST that submits it to the last task the host logs as succeeded.
 * The budget of the queued run is read from /proc: CPU seconds of the host process, of Azurite and of
 * this process, what else the machine did, and what stayed idle (wall × cores − busy), per task;
 * Azurite's access log counts the storage requests by kind; the host's RSS is sampled throughout.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { freePort, startAzurite, type RunningAzurite } from '../azurite';
import { PROJECT_ROOT } from '../paths';
import { CAPABILITIES } from '../../shared/capabilities';
import { ALLOCATOR_ENV } from '../../shared/config';
import { processImage } from '../../shared/imaging/pipeline';
import { normalizeTaskSpec, type TaskSpec } from '../../shared/imaging/spec';
import { median, round2, type BenchImage } from './filters';

export interface E2ePipeline {
  readonly name: string;
  readonly capability: string;
  readonly filters: readonly Record<string, unknown>[];
}

/** The two pipelines: a light and a heavy job with the same photos, JPEG q80 out. */
export const E2E_PIPELINES: readonly E2ePipeline[] = [
  { name: 'light', capability: 'light', filters: [{ name: 'resize', width: 800 }] },
  { name: 'heavy', capability: 'heavy', filters: [{ name: 'blur', radius: 3 }] },
];

const OUTPUT = { format: 'jpeg', quality: 80 } as const;

export interface E2eOptions {
  readonly images: readonly BenchImage[];
  readonly tasks: number;
  readonly rounds: number;
  readonly pipelines: readonly E2ePipeline[];
  readonly rawConcurrency: number;
  /** Extra environment for the host (e.g. a setting under test). */
  readonly hostEnv?: NodeJS.ProcessEnv;
  /** Node options for the host process (e.g. `--cpu-prof`, which NODE_OPTIONS does not take). */
  readonly hostNodeArgs?: readonly string[];
  readonly log?: (line: string) => void;
}

/** CPU time of the queued run, in ms per task. */
export interface CpuBudget {
  readonly worker: number;
  readonly storage: number;
  readonly bench: number;
  /** Other processes on the machine (it is shared). */
  readonly other: number;
  readonly idle: number;
}

export interface E2eRound {
  readonly raw_tasks_per_s: number;
  readonly raw_cpu_ms_per_task: number;
  readonly queued_tasks_per_s: number;
  readonly ratio: number;
  readonly wall_ms: number;
  /** From the submit to the first task done: the poll that picks the job up, and one task. */
  readonly first_task_ms: number;
  readonly cpu_ms_per_task: CpuBudget;
  /** The host's resident set, MB: at submit, the most seen during the job, when it ended. */
  readonly rss_mb: {
    readonly start: number;
    readonly peak: number;
    readonly end: number;
    /** When a quarter, half and three quarters of the tasks had ended: flat when nothing leaks. */
    readonly quarters: readonly number[];
  };
}

export interface E2ePipelineResult {
  readonly pipeline: string;
  readonly capability: string;
  readonly filters: readonly Record<string, unknown>[];
  readonly rounds: readonly E2eRound[];
  /** Medians over the rounds. */
  readonly raw_tasks_per_s: number;
  readonly queued_tasks_per_s: number;
  readonly ratio: number;
  /** Storage requests per task by kind (`queue receive`, `table merge`, …), counted on a job of its own. */
  readonly requests_per_task: Record<string, number>;
  readonly requests_total_per_task: number;
}

export interface E2eResult {
  readonly tasks: number;
  readonly rounds: number;
  readonly images: readonly string[];
  readonly cores: number;
  readonly raw_concurrency: number;
  readonly host: { readonly settings: Record<string, string>; readonly peak_rss_mb: number };
  readonly pipelines: readonly E2ePipelineResult[];
}

const round1 = (v: number) => Math.round(v * 10) / 10;

/** Linux reports process and machine CPU in clock ticks of 10 ms (USER_HZ, 100 on every mainstream kernel). */
const TICK_MS = 10;

/** utime + stime of a process, in ms (fields 14 and 15 of /proc/PID/stat, after the command name). */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

/** The machine's busy CPU time so far (all but idle and iowait), in ms, summed over its cores (/proc/stat). */
export function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq + steal) * TICK_MS;
}

function rssMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? round1(Number(match[1]) / 1024) : 0;
}

/** The pipeline's task spec, exactly as a job's tasks get it. */
export function pipelineSpec(pipeline: E2ePipeline): TaskSpec {
  return normalizeTaskSpec({ filters: pipeline.filters, output: OUTPUT });
}

/** Runs `count` tasks over the images in turn, `concurrency` at a time, in this process: tasks/s and CPU ms/task. */
export async function rawThroughput(
  spec: TaskSpec,
  images: readonly BenchImage[],
  count: number,
  concurrency: number,
): Promise<{ tasksPerS: number; cpuMsPerTask: number }> {
  let next = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  const worker = async () => {
    for (let i = next++; i < count; i = next++) await processImage(spec, images[i % images.length].data);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { tasksPerS: (count / ms) * 1000, cpuMsPerTask: (used.user + used.system) / 1000 / count };
}

/**
 * What kind of storage request an access-log line is, and on which of the app's resources: the service follows
 * from the resource, the operation from the method and path, and the resource is named without the namespace
 * (`table merge (tasks)`, `table update (workers)`, `blob read (images)`, `queue receive (tasks-light)`), so the
 * task path's own requests are told apart from heartbeats and polls of other queues.
 */
export function requestKind(line: string, namespace = ''): string | undefined {
  const match = /"([A-Z]+) ([^ ]+) HTTP\/[\d.]+"/.exec(line);
  if (!match) return undefined;
  const [, method, url] = match;
  const [pathname, query = ''] = url.split('?');
  const parts = pathname.split('/').filter(Boolean).slice(1); // after the account
  const resource = decodeURIComponent(parts[0] ?? '');
  const name = (raw: string) => {
    const bare = raw.replace(/\(.*\)$/, '');
    return ` (${namespace && bare.startsWith(namespace) ? bare.slice(namespace.length).replace(/^-/, '') : bare})`;
  };
  if (parts[1] === 'messages') {
    const op = { GET: 'receive', POST: 'send', DELETE: parts[2] ? 'delete' : 'clear', PUT: 'update' }[method];
    return `queue ${op ?? method.toLowerCase()}${name(resource)}`;
  }
  if (resource === '$batch') return 'table batch';
  if (/^Tables\b/.test(resource)) return 'table create';
  if (/\(.+\)$/.test(resource)) {
    const op = { GET: 'read', PUT: 'update', MERGE: 'merge', PATCH: 'merge', DELETE: 'delete' }[method];
    return `table ${op ?? method.toLowerCase()}${name(resource)}`;
  }
  if (/restype=container/.test(query)) return `blob container ${method.toLowerCase()}${name(resource)}`;
  if (parts.length === 0) return `service ${method.toLowerCase()}`;
  if (parts.length === 1) {
    if (/comp=metadata/.test(query)) return `queue properties${name(resource)}`;
    if (/\(\)$/.test(resource) || /\$filter=/.test(query)) return `table query${name(resource)}`;
    if (method === 'POST') return `table insert${name(resource)}`;
    return `queue ${method === 'PUT' ? 'create' : method.toLowerCase()}${name(resource)}`;
  }
  const op = { GET: 'read', HEAD: 'properties', PUT: 'write', DELETE: 'delete' }[method];
  return `blob ${op ?? method.toLowerCase()}${name(resource)}`;
}

interface Host {
  readonly child: ChildProcess;
  readonly url: string;
  /** How many tasks the host has logged as ending, by outcome. */
  readonly outcomes: Map<string, number>;
  /** Called after each outcome the host logs (set by the job being measured). */
  onOutcome?: () => void;
  output(): string;
  stop(): Promise<void>;
}

/** The built host, as `npm start` runs it (also when this module runs from source, in the tests). */
const HOST_MAIN = path.join(PROJECT_ROOT, 'dist/scripts/local-host/main.js');

async function startHost(
  azurite: RunningAzurite,
  namespace: string,
  env: NodeJS.ProcessEnv,
  nodeArgs: readonly string[],
): Promise<Host> {
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, HOST_MAIN, '--port', String(port)], {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      AzureWebJobsStorage: azurite.connectionString,
      STORAGE_NAMESPACE: namespace,
      AzureFunctionsWebHost__hostid: `bench${namespace}`,
      LOCAL_HOST_AUTH: 'none',
      APPLICATIONINSIGHTS_CONNECTION_STRING: '',
      ...ALLOCATOR_ENV, // as npm start runs the host
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let partial = '';
  const outcomes = new Map<string, number>();
  const host: { onOutcome?: () => void } = {};
  child.stdout.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const outcome = /task message \S+: (\w+)/.exec(line)?.[1];
      if (outcome) {
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        host.onOutcome?.();
      } else if (output.length < 100000) output += `${line}\n`;
    }
  });
  child.stderr.on('data', (d: Buffer) => {
    if (output.length < 100000) output += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // SIGTERM, as a platform stops a host (a profile asked for with --cpu-prof is written at exit); SIGKILL if it hangs
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 60000;
  while (!output.includes('Host listening')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`the local host did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return Object.assign(host, { child, url: `http://127.0.0.1:${port}/api`, outcomes, output: () => output, stop });
}

async function call(url: string, init: RequestInit = {}): Promise<unknown> {
  const response = await fetch(url, init);
  const text = await response.text();
  if (!response.ok) throw new Error(`${init.method ?? 'GET'} ${url}: ${response.status} ${text}`);
  return text ? (JSON.parse(text) as unknown) : undefined;
}

const ended = (host: Host) => [...host.outcomes.values()].reduce((a, b) => a + b, 0);

/**
 * Submits one job and waits until the host has logged `count` more task outcomes: read from its output as it
 * comes, so measuring asks nothing of the host or storage. `sample` runs every 100 ms meanwhile.
 */
async function runJob(
  host: Host,
  pipeline: E2ePipeline,
  images: readonly BenchImage[],
  count: number,
  sample: () => void = () => undefined,
  progress: (done: number) => void = () => undefined,
): Promise<{ jobId: string; ms: number; firstMs: number }> {
  const before = ended(host);
  let firstMs = 0;
  let finished!: () => void;
  const allEnded = new Promise<void>((resolve) => (finished = resolve));
  const start = performance.now();
  host.onOutcome = () => {
    firstMs ||= performance.now() - start;
    progress(ended(host) - before);
    if (ended(host) - before >= count) finished();
  };
  const sampler = setInterval(sample, 100);
  const timeoutMs = Math.max(120000, count * 2000);
  let timer: NodeJS.Timeout | undefined;
  try {
    const job = (await call(`${host.url}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        images: Array.from({ length: count }, (_, i) => images[i % images.length].name),
        filters: pipeline.filters,
        output: OUTPUT,
      }),
    })) as { job_id: string };
    const exited = new Promise<never>((_, reject) =>
      host.child.once('exit', () => reject(new Error(`the host exited during the job:\n${host.output()}`))),
    );
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`job ${job.job_id} did not finish in ${timeoutMs} ms:\n${host.output()}`)),
        timeoutMs,
      );
    });
    await Promise.race([allEnded, exited, timedOut]);
    const ms = performance.now() - start;
    const status = (await call(`${host.url}/jobs/${job.job_id}`)) as { status: string };
    const outcomes = Object.fromEntries(host.outcomes);
    if (status.status !== 'succeeded' || Object.keys(outcomes).some((o) => o !== 'succeeded'))
      throw new Error(
        `job ${job.job_id} ended ${status.status} (outcomes ${JSON.stringify(outcomes)}):\n${host.output()}`,
      );
    return { jobId: job.job_id, ms, firstMs };
  } finally {
    host.onOutcome = undefined;
    clearInterval(sampler);
    clearTimeout(timer);
  }
}

interface Stack {
  readonly azurite: RunningAzurite;
  readonly host: Host;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Azurite and the built host, the images uploaded, every image once through each pipeline (JIT, first loads). */
async function startStack(opts: E2eOptions, accessLog?: (line: string, namespace: string) => void): Promise<Stack> {
  const namespace = `b${randomUUID().replace(/-/g, '').slice(0, 10)}`;
  const azurite = await startAzurite(accessLog ? { accessLog: (line) => accessLog(line, namespace) } : {});
  let host: Host | undefined;
  const stop = async () => {
    await host?.stop();
    await azurite.stop();
  };
  try {
    // one job of `tasks` images, however many the default allows
    host = await startHost(
      azurite,
      namespace,
      { MAX_IMAGES_PER_JOB: String(Math.max(100, opts.tasks)), ...opts.hostEnv },
      opts.hostNodeArgs ?? [],
    );
    for (const image of opts.images)
      await call(`${host.url}/images/${encodeURIComponent(image.name)}`, { method: 'PUT', body: image.data });
    for (const pipeline of opts.pipelines) await runJob(host, pipeline, opts.images, opts.images.length);
    return { azurite, host, pid: host.child.pid!, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The settings as the host process really has them (its environment at start), not as this process meant them. */
function hostSettings(pid: number, opts: E2eOptions): Record<string, string> {
  const environ = new Map(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)] as const),
  );
  const names = [
    'UV_THREADPOOL_SIZE',
    'SHARP_CONCURRENCY',
    ...Object.keys(ALLOCATOR_ENV),
    ...Object.keys(opts.hostEnv ?? {}),
  ];
  return Object.fromEntries(names.map((k) => [k, environ.get(k) ?? 'default'] as const));
}

/** One measured round: raw in this process, then one job through the host, with its CPU budget and RSS. */
async function measureRound(stack: Stack, pipeline: E2ePipeline, opts: E2eOptions): Promise<E2eRound> {
  const { host, pid, azurite } = stack;
  const cores = cpus().length;
  const raw = await rawThroughput(pipelineSpec(pipeline), opts.images, opts.tasks, opts.rawConcurrency);
  const cpu0 = {
    worker: processCpuMs(pid),
    storage: processCpuMs(azurite.pid),
    bench: process.cpuUsage(),
    machine: machineBusyMs(),
  };
  const rssStart = rssMb(pid, 'VmRSS');
  let rssPeak = rssStart;
  const quarters: number[] = [];
  const { ms, firstMs } = await runJob(
    host,
    pipeline,
    opts.images,
    opts.tasks,
    () => (rssPeak = Math.max(rssPeak, rssMb(pid, 'VmRSS'))),
    (done) => {
      while (quarters.length < 3 && done >= ((quarters.length + 1) * opts.tasks) / 4)
        quarters.push(rssMb(pid, 'VmRSS'));
    },
  );
  const worker = processCpuMs(pid) - cpu0.worker;
  const storage = processCpuMs(azurite.pid) - cpu0.storage;
  const benchUsage = process.cpuUsage(cpu0.bench);
  const bench = (benchUsage.user + benchUsage.system) / 1000;
  const busy = machineBusyMs() - cpu0.machine;
  const perTask = (v: number) => round1(v / opts.tasks);
  const queuedTasksPerS = (opts.tasks / ms) * 1000;
  return {
    raw_tasks_per_s: round2(raw.tasksPerS),
    raw_cpu_ms_per_task: round1(raw.cpuMsPerTask),
    queued_tasks_per_s: round2(queuedTasksPerS),
    ratio: round2(queuedTasksPerS / raw.tasksPerS),
    wall_ms: Math.round(ms),
    first_task_ms: Math.round(firstMs),
    cpu_ms_per_task: {
      worker: perTask(worker),
      storage: perTask(storage),
      bench: perTask(bench),
      other: perTask(Math.max(0, busy - worker - storage - bench)),
      idle: perTask(Math.max(0, ms * cores - busy)),
    },
    rss_mb: { start: rssStart, peak: rssPeak, end: rssMb(pid, 'VmRSS'), quarters },
  };
}

/**
 * Storage requests per task by kind, for each pipeline: one more job each, on a second Azurite that writes its access
 * log (which costs it and this process CPU, so the timed rounds run on a silent one).
 */
async function countRequests(opts: E2eOptions): Promise<Map<string, Record<string, number>>> {
  const requests = new Map<string, number>();
  const stack = await startStack(opts, (line, namespace) => {
    const kind = requestKind(line, namespace);
    if (kind) requests.set(kind, (requests.get(kind) ?? 0) + 1);
  });
  const counted = new Map<string, Record<string, number>>();
  try {
    for (const pipeline of opts.pipelines) {
      const before = new Map(requests);
      await runJob(stack.host, pipeline, opts.images, opts.tasks);
      // Azurite logs a request after answering it, and the host deletes a message after logging its outcome:
      // wait (a little) until every task's delete is counted.
      const queue = CAPABILITIES.find((c) => c.name === pipeline.capability)?.queue;
      const deleteKind = `queue delete (${queue})`;
      const deletes = () => (requests.get(deleteKind) ?? 0) - (before.get(deleteKind) ?? 0);
      for (const deadline = Date.now() + 5000; deletes() < opts.tasks && Date.now() < deadline;)
        await new Promise((r) => setTimeout(r, 20));
      counted.set(
        pipeline.name,
        Object.fromEntries(
          [...requests]
            .map(([kind, n]) => [kind, round2((n - (before.get(kind) ?? 0)) / opts.tasks)] as const)
            .filter(([, n]) => n > 0)
            .sort(([a], [b]) => a.localeCompare(b)),
        ),
      );
    }
  } finally {
    await stack.stop();
  }
  return counted;
}

export async function benchE2e(opts: E2eOptions): Promise<E2eResult> {
  const log = opts.log ?? (() => undefined);
  const stack = await startStack(opts);
  const timed = new Map<E2ePipeline, E2eRound[]>();
  let settings: Record<string, string>;
  let peakRss: number;
  try {
    for (const pipeline of opts.pipelines) {
      await rawThroughput(pipelineSpec(pipeline), opts.images, opts.images.length, opts.rawConcurrency); // warm-up
      const rounds: E2eRound[] = [];
      for (let r = 0; r < opts.rounds; r++) {
        const round = await measureRound(stack, pipeline, opts);
        rounds.push(round);
        log(
          `${pipeline.name} round ${r + 1}: raw ${round.raw_tasks_per_s} tasks/s, queued ${round.queued_tasks_per_s} tasks/s (${round.ratio}×)`,
        );
      }
      timed.set(pipeline, rounds);
    }
    settings = hostSettings(stack.pid, opts);
    peakRss = rssMb(stack.pid, 'VmHWM');
  } finally {
    await stack.stop();
  }
  const requests = await countRequests(opts);
  return {
    tasks: opts.tasks,
    rounds: opts.rounds,
    images: opts.images.map((i) => `${i.name} ${i.width}×${i.height}`),
    cores: cpus().length,
    raw_concurrency: opts.rawConcurrency,
    host: { settings, peak_rss_mb: peakRss },
    pipelines: [...timed].map(([pipeline, rounds]): E2ePipelineResult => {
      const byKind = requests.get(pipeline.name) ?? {};
      return {
        pipeline: pipeline.name,
        capability: pipeline.capability,
        filters: pipeline.filters,
        rounds,
        raw_tasks_per_s: round2(median(rounds.map((r) => r.raw_tasks_per_s))),
        queued_tasks_per_s: round2(median(rounds.map((r) => r.queued_tasks_per_s))),
        ratio: round2(median(rounds.map((r) => r.ratio))),
        requests_per_task: byKind,
        requests_total_per_task: round2(Object.values(byKind).reduce((a, b) => a + b, 0)),
      };
    }),
  };
}
