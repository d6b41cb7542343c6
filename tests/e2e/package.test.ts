/**
 * The deployment zip as Azure runs it: `npm run package`'s zip (scripts/package.ts) unpacked into a folder that
 * stands for /home/site/wwwroot, its file list checked (production dependencies only, sharp's Linux x64 glibc
 * binaries, no tests, samples, local settings, sources or maps), then the local host run with that folder as the
 * app root (--root, as AzureWebJobsScriptRoot names the app root to the real host: azure-functions-host
 * src/WebJobs.Script.WebHost/Configuration/WebScriptHostConfigurationSource.cs) against Azurite. A --require hook
 * records every module the app's own files load: each must resolve inside the unpacked folder, so the app runs from
 * the zip's node_modules and not from the project's.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import zlib, { inflateRawSync } from 'node:zlib';
import ignore from 'ignore';
import yauzl from 'yauzl';
import { startAzurite, type RunningAzurite } from '../../scripts/azurite';
import { npmProductionFolders, packageApp, productionPackages } from '../../scripts/package';
import { seedSampleImages } from '../../scripts/seed';
import { Storage } from '../../shared/storage/clients';
import { resourceNames } from '../../shared/storage/names';
import { HOST_MAIN, getJson, jobDone, keyed, postJson, spawnApp, stopHost, type HostProcess } from '../helpers/host';
import { uniqueNamespace } from '../helpers/storage';

const ROOT = path.resolve(__dirname, '../..');
const FUNCTION_KEY = 'package-test-function-key';
const MASTER_KEY = 'package-test-master-key';

let azurite: RunningAzurite | undefined;
let work: string;
let app: string;
let host: HostProcess | undefined;
/** name -> unix mode, for every file in the zip */
const entries = new Map<string, number>();
let packaged: { files: number; bytes: number; ms: number; unzipMs?: number };

/** CRC-32 as zip stores it: node's zlib.crc32 (Node 20.15+), else the table-driven one (engines allows 20.9). */
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
const crc32 =
  (zlib as { crc32?: (data: Uint8Array) => number }).crc32 ??
  ((data: Uint8Array) => {
    let c = 0xffffffff;
    for (const byte of data) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  });

/**
 * Unpacks with yauzl (its central directory and local headers), keeping each file's unix mode. The zip is read
 * whole and each entry's data inflated in one call, its size and CRC-32 checked (yauzl checks neither on this
 * path): one stream and one threadpool round trip per entry made unpacking 55,000 files take half a minute.
 */
async function unzip(zipFile: string, dir: string): Promise<void> {
  const bytes = readFileSync(zipFile);
  // eachEntry is yauzl 3.4's (its types lag behind)
  const zip = (await yauzl.fromBufferPromise(bytes, { lazyEntries: true })) as yauzl.ZipFile & {
    eachEntry(): AsyncIterable<yauzl.Entry>;
  };
  const made = new Set<string>();
  for await (const entry of zip.eachEntry()) {
    const mode = (entry.externalFileAttributes >>> 16) & 0o777;
    entries.set(entry.fileName, mode);
    const target = path.join(dir, entry.fileName);
    if (!target.startsWith(dir + path.sep)) throw new Error(`entry ${entry.fileName} leaves the folder`);
    const { fileDataStart } = await zip.readLocalFileHeaderPromise(entry, { minimal: true });
    const stored = bytes.subarray(fileDataStart, fileDataStart + entry.compressedSize);
    if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8)
      throw new Error(`${entry.fileName}: compression method ${entry.compressionMethod}, expected 0 or 8`);
    const data = entry.compressionMethod === 8 ? inflateRawSync(stored) : stored;
    if (data.length !== entry.uncompressedSize || crc32(data) !== entry.crc32)
      throw new Error(
        `${entry.fileName}: ${data.length} bytes with CRC-32 ${crc32(data)}, expected ${entry.uncompressedSize} with ${entry.crc32}`,
      );
    const parent = path.dirname(target);
    if (!made.has(parent)) mkdirSync(parent, { recursive: true });
    made.add(parent);
    writeFileSync(target, data, { mode });
  }
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'package-test-'));
  app = path.join(work, 'wwwroot');
  const started = Date.now();
  const { files, bytes } = await packageApp(path.join(work, 'app.zip'));
  packaged = { files, bytes, ms: Date.now() - started };
  const unzipping = Date.now();
  await unzip(path.join(work, 'app.zip'), app);
  packaged.unzipMs = Date.now() - unzipping;
  azurite = await startAzurite();
}, 600000);

afterAll(async () => {
  if (host) await stopHost(host);
  await azurite?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
}, 30000);

const outsideModules = () => [...entries.keys()].filter((f) => !f.startsWith('node_modules/'));

it('holds the host files, the built functions and the dashboard, and nothing for development', () => {
  console.log(
    `package: ${packaged.files} files, ${(packaged.bytes / 1024 / 1024).toFixed(1)} MB, ${(packaged.ms / 1000).toFixed(1)} s; unpacked in ${((packaged.unzipMs ?? 0) / 1000).toFixed(1)} s`,
  );
  expect(entries.size).toBe(packaged.files);
  expect([...new Set([...entries.keys()].map((f) => f.split('/')[0]))].sort()).toEqual([
    'dist',
    'host.json',
    'node_modules',
    'package.json',
    'shared',
  ]);
  const manifest = JSON.parse(readFileSync(path.join(app, 'package.json'), 'utf8'));
  expect(manifest.main).toBe('dist/functions/*.js');
  expect(manifest.devDependencies).toBeUndefined();
  expect(readFileSync(path.join(app, 'host.json'), 'utf8')).toBe(readFileSync(path.join(ROOT, 'host.json'), 'utf8'));
  for (const f of ['dist/functions/jobs.js', 'dist/shared/http/health.js', 'dist/package.json'])
    expect(entries.has(f)).toBe(true);
  for (const f of ['index.html', 'dashboard.js', 'dashboard.css'])
    expect(entries.has(`shared/http/dashboard/${f}`)).toBe(true);
  // no tests, samples, local settings, sources, maps, scripts the functions do not load
  const unwanted = outsideModules().filter(
    (f) =>
      /(^|\/)(tests?|samples?|infra|docs)\//.test(f) ||
      /(^|\/)(local\.settings\.json|README\.md|\.funcignore|\.gitignore)$/.test(f) ||
      /\.(ts|map)$/.test(f) ||
      f.startsWith('dist/scripts/') ||
      (f.startsWith('shared/') && !f.startsWith('shared/http/dashboard/')),
  );
  expect(unwanted).toEqual([]);
  expect([...entries.keys()].filter((f) => /(^|\/)(local\.settings\.json|\.azurite\/)/.test(f))).toEqual([]);
});

it('carries the production dependencies only, with sharp for Linux x64 (glibc)', () => {
  const packageDirs = [...entries.keys()]
    .filter((f) => /^(node_modules\/(@[^/]+\/)?[^/]+\/)+package\.json$/.test(f))
    .map((f) => f.slice(0, -'/package.json'.length))
    // a package's own subfolders may hold a package.json (e.g. "type" markers): keep the package folders
    .filter((f) => /^node_modules\/((@[^/]+\/)?[^/]+\/node_modules\/)*(@[^/]+\/)?[^/]+$/.test(f));
  expect([...new Set(packageDirs)].sort()).toEqual(productionPackages());
  // the lockfile reading agrees with npm's own view of the production tree
  expect(productionPackages()).toEqual(npmProductionFolders());

  const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  const dev = Object.entries(lock.packages as Record<string, { dev?: boolean }>)
    .filter(([folder, p]) => folder && p.dev)
    .map(([folder]) => folder);
  expect(dev.length).toBeGreaterThan(100);
  expect(dev.filter((folder) => entries.has(`${folder}/package.json`))).toEqual([]);
  // a devDependency a production package also needs (e.g. yaml, @types/node) is not dev in the lockfile: it stays
  const devDependencies = Object.keys(
    JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).devDependencies,
  );
  const devOnly = devDependencies.filter((name) => lock.packages[`node_modules/${name}`]?.dev);
  expect(devOnly).toEqual(expect.arrayContaining(['jest', 'typescript', 'azurite', 'eslint', 'yauzl']));
  expect(devOnly.filter((name) => entries.has(`node_modules/${name}/package.json`))).toEqual([]);

  const img = packageDirs.filter((f) => f.startsWith('node_modules/@img/sharp-')).sort();
  expect(img).toEqual(['node_modules/@img/sharp-libvips-linux-x64', 'node_modules/@img/sharp-linux-x64']);
  // unix modes kept: each file as it is on disk (executables among them), except the rewritten package.json
  const modes = [...entries].filter(([f]) => f !== 'package.json');
  const changed = modes.filter(([f, mode]) => mode !== (statSync(path.join(ROOT, f)).mode & 0o777));
  expect(changed).toEqual([]);
  expect(modes.filter(([, mode]) => mode & 0o100).length).toBeGreaterThan(0);
});

/** Project files .funcignore keeps, walked as func walks them: an ignored folder is not entered. */
function funcPublishFiles(): string[] {
  const rules = ignore().add(readFileSync(path.join(ROOT, '.funcignore'), 'utf8'));
  const kept: string[] = [];
  const walk = (prefix: string) => {
    for (const entry of readdirSync(path.join(ROOT, prefix), { withFileTypes: true })) {
      const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (!rules.ignores(`${relative}/`)) walk(relative);
      } else if (!rules.ignores(relative)) kept.push(relative);
    }
  };
  for (const entry of readdirSync(ROOT, { withFileTypes: true })) {
    // node_modules is the symlink to the installed tree: func ships it whole, so only its top folder is checked
    if (entry.name === 'node_modules') continue;
    if (entry.isDirectory() ? !rules.ignores(`${entry.name}/`) : !rules.ignores(entry.name))
      if (entry.isDirectory()) walk(entry.name);
      else kept.push(entry.name);
  }
  expect(rules.ignores('node_modules/')).toBe(false);
  return kept.sort();
}

it('.funcignore keeps the same files as the zip (node_modules aside: func ships it as installed)', () => {
  expect(funcPublishFiles()).toEqual(outsideModules().sort());
});

it('runs as the app root: health, a light and a heavy task, results; every module from the zip', async () => {
  const namespace = uniqueNamespace();
  await seedSampleImages(new Storage(azurite!.connectionString, resourceNames(namespace)));
  const loaded = path.join(work, 'loaded.jsonl');
  const hook = path.join(work, 'record-resolutions.js');
  // Module._resolveFilename is what require calls; only requests made by the app's own files are recorded
  writeFileSync(
    hook,
    `const Module = require('node:module'); const fs = require('node:fs');
const app = ${JSON.stringify(app + path.sep)};
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, parent, ...rest) {
  const resolved = resolve.call(this, request, parent, ...rest);
  if (parent && parent.filename && parent.filename.startsWith(app))
    fs.appendFileSync(${JSON.stringify(loaded)}, JSON.stringify({ request, from: parent.filename, resolved }) + '\\n');
  return resolved;
};\n`,
  );
  host = await spawnApp(
    HOST_MAIN,
    {
      AzureWebJobsStorage: azurite!.connectionString,
      STORAGE_NAMESPACE: namespace,
      NODE_PATH: undefined,
      NODE_OPTIONS: `--require ${hook}`,
      LOCAL_HOST_AUTH: 'keys',
      LOCAL_HOST_FUNCTION_KEY: FUNCTION_KEY,
      LOCAL_HOST_MASTER_KEY: MASTER_KEY,
    },
    /Host listening on/,
    { args: ['--root', app], cwd: app },
  );
  const health = await fetch(`${host.url}/health`);
  expect(health.status).toBe(200);
  expect(((await health.json()) as { status: string }).status).toBe('ok');
  const chart = await fetch(`${host.url}/dashboard/assets/chart.umd.js`);
  expect(chart.status).toBe(200);
  expect((await chart.arrayBuffer()).byteLength).toBeGreaterThan(100_000); // read to the end: no socket left open
  expect((await fetch(`${host.url}/dashboard`)).status).toBe(200);

  const light = await postJson(
    `${host.url}/jobs`,
    { images: ['sample_640x480.jpg'], filters: ['grayscale'] },
    keyed(FUNCTION_KEY),
  );
  const heavy = await postJson(
    `${host.url}/jobs`,
    { images: ['sample_640x480.jpg'], filters: [{ name: 'blur', radius: 2 }] },
    keyed(FUNCTION_KEY),
  );
  for (const job of [light, heavy]) {
    const done = await jobDone(host.url, job.job_id, 60000, keyed(FUNCTION_KEY));
    expect(done.counts).toMatchObject({ succeeded: 1, failed: 0 });
    const task = await getJson(`${host.url}/tasks/${job.tasks[0].task_id}`, keyed(FUNCTION_KEY));
    expect(task.capability).toBe(job === light ? 'light' : 'heavy');
    const result = await fetch(`${host.url}/tasks/${job.tasks[0].task_id}/result?download=stream`, {
      headers: keyed(FUNCTION_KEY),
    });
    expect(result.status).toBe(200);
    expect((await result.arrayBuffer()).byteLength).toBeGreaterThan(1000);
  }

  const resolutions = readFileSync(loaded, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { request: string; from: string; resolved: string });
  const builtin = new Set(builtinModules);
  const requested = new Set(resolutions.map((r) => r.request));
  // the app's own files and its dependencies, sharp's native binding among them
  for (const name of ['@azure/functions', '@azure/storage-queue', 'sharp']) expect(requested.has(name)).toBe(true);
  expect(resolutions.some((r) => r.resolved.startsWith(path.join(app, 'node_modules/@img/sharp-linux-x64/')))).toBe(
    true,
  );
  const outside = resolutions.filter(
    (r) =>
      !r.resolved.startsWith(app + path.sep) &&
      !builtin.has(r.resolved.replace(/^node:/, '')) &&
      // the stand-in the host provides, as the Node worker provides the real one
      r.request !== '@azure/functions-core',
  );
  expect(outside).toEqual([]);
}, 180000);
