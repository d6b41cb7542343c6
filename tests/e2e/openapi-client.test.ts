/**
 * A client generated from the app's own GET /api/openapi.json works: the document is turned into TypeScript
 * types with openapi-typescript (as the README shows, with --default-non-nullable false so that parameters
 * with a default stay optional in requests), a small openapi-fetch client written against those types is
 * type-checked with strict TypeScript (and mistakes in it are refused: a wrong body, a missing path
 * parameter, a field no answer has), then run against the built local host on Azurite: it submits a job,
 * polls it to the end, and reads a problem+json error through the typed `error`.
 * Needs the build (npm run build).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { seedSampleImages } from '../../scripts/seed';
import { Storage } from '../../shared/storage/clients';
import { resourceNames } from '../../shared/storage/names';
import { HOST_MAIN, keyedAppEnv, spawnApp, stopHost, type HostProcess } from '../helpers/host';
import { uniqueNamespace, useAzurite } from '../helpers/storage';

const ROOT = path.resolve(__dirname, '../..');
const OPENAPI_TS = path.join(ROOT, 'node_modules/openapi-typescript/bin/cli.js');
const run = promisify(execFile);
const FUNCTION_KEY = 'client-function-key-00000000000';
const MASTER_KEY = 'client-master-key-000000000000000';
const UNKNOWN_JOB = '6c1f0e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b';

const { azurite } = useAzurite();
let host: HostProcess;
let dir: string;

/** The client a user writes: every call typed by the generated `paths`. */
const CLIENT = `import createClient from 'openapi-fetch';
import type { components, paths } from './api';

type Job = components['schemas']['Job'];
// POST /jobs takes three body forms (JSON, an image, multipart) and openapi-fetch types its body as any of
// them (an image is any bytes): say which one you send with satisfies, and the JSON body is checked
type SubmitJob = components['schemas']['SubmitJobRequest'];

const client = createClient<paths>({
  baseUrl: process.env.API_URL!,
  headers: { 'x-functions-key': process.env.FUNCTION_KEY! },
});

async function finished(jobId: string): Promise<Job> {
  for (;;) {
    const { data, error } = await client.GET('/jobs/{job_id}', { params: { path: { job_id: jobId } } });
    if (!data) throw new Error(\`job \${jobId}: \${JSON.stringify(error)}\`);
    if (data.status !== 'queued' && data.status !== 'processing') return data;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function main(): Promise<void> {
  const submitted = await client.POST('/jobs', {
    body: {
      images: ['sample_640x480.jpg'],
      filters: ['grayscale', { name: 'blur' }, { name: 'resize', width: 320 }],
    } satisfies SubmitJob,
  });
  if (!submitted.data) throw new Error(\`submit: \${JSON.stringify(submitted.error)}\`);
  const job = await finished(submitted.data.job_id);
  const result = job.tasks[0].output;
  const missing = await client.GET('/jobs/{job_id}', { params: { path: { job_id: process.env.UNKNOWN_JOB! } } });
  const filters = await client.GET('/filters');
  console.log(
    JSON.stringify({
      accepted: submitted.response.status,
      tasks: submitted.data.tasks.map((t) => t.capability),
      status: job.status,
      size: result ? [result.width, result.height] : null,
      missing: { status: missing.response.status, type: missing.error?.type },
      filters: filters.data?.filters.length,
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
`;

/** Mistakes the generated types must refuse, each in a file of its own. */
const MISTAKES: Record<string, string> = {
  'filters-not-an-array': `await client.POST('/jobs', { body: { filters: 'grayscale' } satisfies SubmitJob });`,
  'unknown-filter': `await client.POST('/jobs', { body: { filters: ['blurry'] } satisfies SubmitJob });`,
  'parameter-out-of-type': `await client.POST('/jobs', { body: { filters: [{ name: 'blur', radius: 'big' }] } satisfies SubmitJob });`,
  'missing-path-parameter': `await client.GET('/jobs/{job_id}', {});`,
  'unknown-route': `await client.GET('/jobz');`,
  'unknown-field': `const { data } = await client.GET('/health'); console.log(data?.no_such_field);`,
};

const mistake = (body: string) => `import createClient from 'openapi-fetch';
import type { components, paths } from './api';
type SubmitJob = components['schemas']['SubmitJobRequest'];
const client = createClient<paths>({ baseUrl: 'http://localhost' });
export async function mistake(): Promise<void> {
  ${body}
}
`;

/** The README's client example (the TypeScript block under "Generate a typed client"). */
function readmeClient(): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = /Generate a typed client[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme);
  if (!block) throw new Error('README.md has no TypeScript block under "Generate a typed client"');
  return block[1];
}

/** Type-checks files in `dir` the way a user's strict project would; the diagnostics per file. */
function typeCheck(files: string[]): Map<string, string[]> {
  const program = ts.createProgram(
    files.map((f) => path.join(dir, f)),
    {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      esModuleInterop: true,
      skipLibCheck: true,
      types: ['node'],
      typeRoots: [path.join(ROOT, 'node_modules/@types')],
    },
  );
  const byFile = new Map<string, string[]>(files.map((f) => [f, []]));
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const file = d.file ? path.relative(dir, d.file.fileName) : '(program)';
    const list = byFile.get(file) ?? [];
    list.push(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    byFile.set(file, list);
  }
  return byFile;
}

beforeAll(async () => {
  const namespace = uniqueNamespace();
  const storage = new Storage(azurite().connectionString, resourceNames(namespace));
  await storage.ensureResources();
  await seedSampleImages(storage);
  host = await spawnApp(
    HOST_MAIN,
    keyedAppEnv(azurite().connectionString, namespace, { functionKey: FUNCTION_KEY, masterKey: MASTER_KEY }),
    /Host listening on/,
  );
  dir = mkdtempSync(path.join(os.tmpdir(), 'openapi-client-'));
  // the user's project has openapi-fetch installed: ours stands in for it
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  const doc = await (await fetch(`${host.url}/openapi.json`)).text();
  writeFileSync(path.join(dir, 'openapi.json'), doc);
  // the README's command, run as npx runs it (openapi-typescript is ESM inside: a child process, not a require)
  await run(process.execPath, [OPENAPI_TS, 'openapi.json', '-o', 'api.d.ts', '--default-non-nullable', 'false'], {
    cwd: dir,
    timeout: 60000,
  });
}, 90000);

afterAll(async () => {
  if (host) await stopHost(host);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('generates types that a strict TypeScript client compiles against, and that refuse mistakes', () => {
  writeFileSync(path.join(dir, 'client.ts'), CLIENT);
  writeFileSync(path.join(dir, 'readme.ts'), readmeClient());
  for (const [name, body] of Object.entries(MISTAKES)) writeFileSync(path.join(dir, `${name}.ts`), mistake(body));
  const diagnostics = typeCheck(['client.ts', 'readme.ts', ...Object.keys(MISTAKES).map((name) => `${name}.ts`)]);
  expect(diagnostics.get('client.ts')).toEqual([]);
  expect(diagnostics.get('readme.ts')).toEqual([]);
  const refused = Object.keys(MISTAKES).map((name) => [name, diagnostics.get(`${name}.ts`)!.length > 0]);
  expect(Object.fromEntries(refused)).toEqual(Object.fromEntries(Object.keys(MISTAKES).map((name) => [name, true])));
}, 60000);

it('runs against the app: submits a job, follows it to the end and reads a typed problem+json error', async () => {
  const js = ts.transpileModule(CLIENT, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  }).outputText;
  writeFileSync(path.join(dir, 'client.js'), js);
  const { stdout } = await run(process.execPath, [path.join(dir, 'client.js')], {
    cwd: dir,
    env: { ...process.env, API_URL: host.url, FUNCTION_KEY, UNKNOWN_JOB },
    timeout: 60000,
  });
  expect(JSON.parse(stdout)).toEqual({
    accepted: 202,
    tasks: ['heavy'],
    status: 'succeeded',
    size: [320, 240],
    missing: { status: 404, type: 'urn:image-pipeline:problem:not_found' },
    filters: expect.any(Number),
  });
}, 90000);
