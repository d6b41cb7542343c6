/**
 * `npm run examples`: every example in README.md is real output of the current code. Each example is a block
 *
 *     <!-- example:NAME:start -->
 *     ```bash            the commands, written by hand, run verbatim
 *     ```
 *     ```json | text     their output, written by this script
 *     ```
 *     <!-- example:NAME:end -->
 *
 * The script starts Azurite (in memory, free ports) and the built local host (dist/) with the default resource
 * names, uploads the sample images as `npm start` does, runs every block's commands in README order in one bash
 * session (so `$JOB` set in one block is there in the next; `localhost:7071` is pointed at the host's port), and
 * writes each block's output: JSON pretty-printed, anything else as printed. With `--check` it writes nothing and
 * fails when a block's output no longer has the shape the README shows (keys, value types, HTTP statuses and
 * problem types, text lines with ids, times and figures left out): tests/e2e/readme-examples.test.ts runs that.
 *
 * Things a reader's run would not have are set up here and said in the README's prose: a message that names no
 * task is put on `tasks-light` first, so the dead-letter examples have one; the metrics timer runs every 2 s.
 * The host checks keys as `npm start` runs it (LOCAL_HOST_AUTH=keys with local.settings.json's development
 * keys), so every command has to send the key the README tells the reader to export.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { STORAGE_CONNECTION } from '../shared/config';
import { Storage } from '../shared/storage/clients';
import { resourceNames } from '../shared/storage/names';
import { enqueue } from '../shared/storage/queue';
import { isListening, startAzurite } from './azurite';
import { KEY_SETTINGS } from './local-host/keys';
import { PROJECT_ROOT, SAMPLES_DIR } from './paths';
import { seedSampleImages } from './seed';

export const README = path.join(PROJECT_ROOT, 'README.md');
const HOST_MAIN = path.join(PROJECT_ROOT, 'dist/scripts/local-host/main.js');
/** The address the README's commands use; the run points it at the host's port. */
export const README_ORIGIN = 'localhost:7071';
export const METRICS_SCHEDULE = '*/2 * * * * *';

/** The development keys `npm start` gives the local host: local.settings.json's, which the README exports. */
export function developmentKeys(root = PROJECT_ROOT): { functionKey: string; masterKey: string } {
  const values = (
    JSON.parse(readFileSync(path.join(root, 'local.settings.json'), 'utf8')) as {
      Values: Record<string, string>;
    }
  ).Values;
  const functionKey = values[KEY_SETTINGS.functionKey.env];
  const masterKey = values[KEY_SETTINGS.masterKey.env];
  if (values[KEY_SETTINGS.auth.env] !== 'keys' || !functionKey || !masterKey)
    throw new Error('local.settings.json should set LOCAL_HOST_AUTH=keys and both development keys');
  return { functionKey, masterKey };
}

export interface Example {
  readonly name: string;
  /** The bash fences' contents, in order. */
  readonly commands: string;
  /** The output fence, when the block has one. */
  readonly output?: { readonly lang: string; readonly text: string };
}

const BLOCK = /<!-- example:([a-z0-9-]+):start -->\n([\s\S]*?)<!-- example:\1:end -->/g;
const FENCE = /```(\w*)\n([\s\S]*?)```/g;

export function parseExamples(readme: string): Example[] {
  const examples: Example[] = [];
  for (const [, name, body] of readme.matchAll(BLOCK)) {
    const fences = [...body.matchAll(FENCE)].map(([, lang, text]) => ({ lang, text: text.replace(/\n$/, '') }));
    const bash = fences.filter((f) => f.lang === 'bash');
    const rest = fences.filter((f) => f.lang !== 'bash');
    if (!bash.length) throw new Error(`README example '${name}' has no bash block`);
    if (rest.length > 1) throw new Error(`README example '${name}' has ${rest.length} output blocks; one at most`);
    if (examples.some((e) => e.name === name)) throw new Error(`README example '${name}' appears twice`);
    examples.push({ name, commands: bash.map((f) => f.text).join('\n'), output: rest[0] });
  }
  return examples;
}

/** Abridgements, each announced by a comment in its example's commands. */
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- output of the app
const ABRIDGE: Record<string, (value: Json) => unknown> = {
  filters: (v) => ({ ...v, filters: (v.filters as unknown[]).slice(0, 1) }),
  workers: (v) => ({
    ...v,
    workers: (v.workers as Json[]).map((w) => ({ ...w, recent_tasks: (w.recent_tasks as unknown[]).slice(0, 2) })),
  }),
  'job-status': (v) => ({
    ...v,
    tasks: ['… one task record per image, as GET /api/tasks/{task_id} shows …'],
  }),
};

/** What the README shows for a block's raw output: JSON pretty-printed (and abridged where announced). */
export function render(name: string, stdout: string): { lang: string; text: string } {
  const text = stdout.replace(/\n+$/, '');
  try {
    const value = JSON.parse(text) as unknown;
    const shown = ABRIDGE[name] && value && typeof value === 'object' ? ABRIDGE[name](value) : value;
    return { lang: 'json', text: JSON.stringify(shown, null, 2) };
  } catch {
    return { lang: 'text', text };
  }
}

const MARK = (name: string) => `@@readme-example:${name}@@`;

/** Runs every example's commands in one bash session against `port`; returns each one's stdout. */
export async function runExamples(examples: Example[], port: number, cwd: string): Promise<Map<string, string>> {
  const script = examples
    .map(
      (e) =>
        `echo "$(date +%s.%N) ${e.name}" >&2; printf '\\n%s\\n' '${MARK(e.name)}'\n${e.commands.replaceAll(README_ORIGIN, `localhost:${port}`)}`,
    )
    .join('\n');
  const child = spawn('bash', ['-e', '-c', script], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  if (process.env.README_EXAMPLES_TIMING) child.stderr.pipe(process.stderr);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  const outputs = new Map<string, string>();
  const parts = stdout.split(/\n@@readme-example:([a-z0-9-]+)@@\n/);
  for (let i = 1; i < parts.length; i += 2)
    outputs.set(parts[i], parts[i + 1].replaceAll(`localhost:${port}`, README_ORIGIN));
  if (code !== 0) {
    const last = [...outputs.keys()].pop();
    throw new Error(`the README's commands failed (exit ${code}) in example '${last}': ${stderr.slice(-2000)}`);
  }
  return outputs;
}

/** The README with every example's output block replaced by `outputs`. */
export function writeOutputs(readme: string, outputs: Map<string, string>): string {
  return readme.replace(BLOCK, (_whole, name: string, body: string) => {
    const stdout = outputs.get(name);
    if (stdout === undefined) throw new Error(`no output for README example '${name}'`);
    const { lang, text } = render(name, stdout);
    const bash = [...body.matchAll(FENCE)].filter(([, l]) => l === 'bash').map(([fence]) => fence);
    return `<!-- example:${name}:start -->\n${bash.join('\n')}\n\`\`\`${lang}\n${text}\n\`\`\`\n<!-- example:${name}:end -->`;
  });
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const TIME = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g;

/** A text line with ids, times and figures left out; an HTTP status opening the line is kept. */
export function normalizeLine(line: string): string {
  const status = /^[1-5]\d\d (?=\S)/.exec(line)?.[0] ?? '';
  return (
    status +
    line
      .slice(status.length)
      .replace(UUID, '<id>')
      .replace(TIME, '<time>')
      .replace(/\b(\d+(\.\d+)?(e[+-]?\d+)?|NaN)\b/g, '<n>')
  );
}

const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** Where `live` no longer has the shape of `shown`: keys, value types, HTTP statuses and problem types. */
export function shapeProblems(shown: unknown, live: unknown, at = '$'): string[] {
  if (shown === null || live === null) return []; // optional figures (no message waiting, nothing measured yet)
  if (kind(shown) !== kind(live)) return [`${at}: the README shows ${kind(shown)}, the app returns ${kind(live)}`];
  if (Array.isArray(shown) && Array.isArray(live))
    return shown.slice(0, live.length).flatMap((s, i) => shapeProblems(s, live[i], `${at}[${i}]`));
  if (kind(shown) === 'object') {
    const [s, l] = [shown as Record<string, unknown>, live as Record<string, unknown>];
    const problems = [
      ...Object.keys(s)
        .filter((k) => !(k in l))
        .map((k) => `${at}.${k}: in the README, not returned by the app`),
      ...Object.keys(l)
        .filter((k) => !(k in s))
        .map((k) => `${at}.${k}: returned by the app, missing from the README`),
    ];
    for (const k of Object.keys(s)) if (k in l) problems.push(...shapeProblems(s[k], l[k], `${at}.${k}`));
    return problems;
  }
  const exact = (at.endsWith('.status') && typeof live === 'number') || at === '$.type';
  const text = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
  return exact && shown !== live ? [`${at}: the README shows ${text(shown)}, the app returns ${text(live)}`] : [];
}

/** Where a README example's output differs from what the code prints now. */
export function exampleProblems(example: Example, stdout: string): string[] {
  const where = `README example '${example.name}'`;
  const live = render(example.name, stdout);
  if (!example.output) return [`${where}: has no output block`];
  if (example.output.lang !== live.lang)
    return [`${where}: the README shows ${example.output.lang}, the commands print ${live.lang}`];
  if (live.lang === 'json')
    return shapeProblems(JSON.parse(example.output.text), JSON.parse(live.text)).map((p) => `${where}: ${p}`);
  const [shown, now] = [example.output.text, live.text].map((t) => t.split('\n').map(normalizeLine));
  for (let i = 0; i < Math.max(shown.length, now.length); i++)
    if (shown[i] !== now[i])
      return [
        `${where}: line ${i + 1} shows\n  ${shown[i] ?? '(nothing)'}\nbut the commands print\n  ${now[i] ?? '(nothing)'}`,
      ];
  return [];
}

/**
 * A free port with as many digits as 7071, so output cut at a byte count (`head -c`) ends where a reader's does.
 */
async function fourDigitPort(): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = 7100 + Math.floor(Math.random() * 2800);
    if (!(await isListening(port))) return port;
  }
  throw new Error('no free port between 7100 and 9900');
}

/** Azurite + the built local host with the README's resource names, the samples, and a dead letter to show. */
export async function withApp<T>(use: (port: number) => Promise<T>): Promise<T> {
  const azurite = await startAzurite();
  let host: ReturnType<typeof spawn> | undefined;
  try {
    const storage = new Storage(azurite.connectionString, resourceNames(''));
    await seedSampleImages(storage);
    await enqueue(storage.queue('light'), { task: 'a message that names no task' });
    const port = await fourDigitPort();
    const keys = developmentKeys();
    host = spawn(process.execPath, [HOST_MAIN, '--port', String(port)], {
      cwd: PROJECT_ROOT,
      env: {
        ...process.env,
        [STORAGE_CONNECTION]: azurite.connectionString,
        STORAGE_NAMESPACE: '',
        METRICS_SCHEDULE,
        WORKER_HEARTBEAT_SECONDS: '2',
        [KEY_SETTINGS.auth.env]: 'keys',
        [KEY_SETTINGS.functionKey.env]: keys.functionKey,
        [KEY_SETTINGS.masterKey.env]: keys.masterKey,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    host.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    host.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise((resolve) => host!.once('exit', resolve));
    const deadline = Date.now() + 60000;
    for (;;) {
      const dead = (await fetch(`http://localhost:${port}/api/dead-letters`, {
        headers: { 'x-functions-key': keys.functionKey },
      }).then(
        (r) => r.json() as Promise<{ capabilities: { count: number }[] }>,
        () => undefined,
      )) ?? { capabilities: [] };
      if (dead.capabilities.some((c) => c.count > 0)) break;
      if (host.exitCode !== null) throw new Error(`the local host exited: ${log.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`no dead letter within 60 s: ${log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    try {
      return await use(port);
    } finally {
      host.kill('SIGKILL'); // nothing to keep: Azurite is in memory and goes next; tasks still running are moot
      await exited;
    }
  } finally {
    if (host && host.exitCode === null && host.signalCode === null) host.kill('SIGKILL');
    await azurite.stop();
  }
}

/** Runs the README's examples against a fresh app: their outputs, and where the README differs from them. */
export async function generate(readme: string): Promise<{ outputs: Map<string, string>; problems: string[] }> {
  const examples = parseExamples(readme);
  const cwd = mkdtempSync(path.join(tmpdir(), 'readme-examples-'));
  // the project folder as a reader has it after npm start, for the files the commands name and `npm run -s cli`
  symlinkSync(SAMPLES_DIR, path.join(cwd, 'samples'));
  for (const entry of ['package.json', 'dist', 'node_modules'])
    symlinkSync(path.join(PROJECT_ROOT, entry), path.join(cwd, entry));
  const outputs = await withApp((port) => runExamples(examples, port, cwd));
  const problems = examples.flatMap((e) =>
    outputs.has(e.name) ? exampleProblems(e, outputs.get(e.name)!) : [`README example '${e.name}' did not run`],
  );
  return { outputs, problems };
}

if (require.main === module) {
  const check = process.argv.includes('--check');
  const current = readFileSync(README, 'utf8');
  generate(current).then(
    ({ outputs, problems }) => {
      if (check) {
        console.log(problems.length ? problems.join('\n') : 'README examples match the code');
        process.exit(problems.length ? 1 : 0);
      }
      const next = writeOutputs(current, outputs);
      if (next !== current) writeFileSync(README, next);
      console.log(`${outputs.size} README examples ${next === current ? 'unchanged' : 'rewritten'}`);
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
