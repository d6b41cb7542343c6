/**
 * `npm run package`: the deployment zip for Azure Functions (Flex Consumption zip deploy, or any plan that runs
 * from a package), written to `.deploy/app.zip`. Code is built here and shipped with its node_modules, so the
 * app needs no remote build. At the zip root, as the host expects the app root (/home/site/wwwroot):
 *
 * - `host.json`, and a `package.json` whose `main` is the built function files (`dist/functions/*.js`);
 * - the built output the functions load: `dist/functions`, `dist/shared`, `dist/package.json` (the health route
 *   reads its version) and whatever files of `dist/scripts` they require (none today), without source maps;
 * - the dashboard's static files, which `shared/http/dashboard.ts` reads from `shared/http/dashboard` beside
 *   host.json;
 * - `node_modules` with the production dependencies only, taken from package-lock.json: every package not flagged
 *   `dev`, and of the platform-specific optional ones (sharp's `@img/sharp-*`) only those for the target Flex
 *   Consumption runs, Linux x64 with glibc. They are copied from the installed node_modules, so packaging works
 *   offline; a package missing or of another version than the lockfile says fails with the command that fixes it.
 *
 * The same tree gives the same bytes: entries sorted by name, one fixed timestamp, unix modes kept (scripts/zip.ts
 * writes them, deflated in worker threads).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from './paths';
import { writeZip, type ZipEntry } from './zip';

export type { ZipEntry } from './zip';

/** The platform of a Flex Consumption instance. */
export const TARGET = { os: 'linux', cpu: 'x64', libc: 'glibc' } as const;
export const DEFAULT_OUT = path.join(PROJECT_ROOT, '.deploy', 'app.zip');

interface LockPackage {
  version?: string;
  dev?: boolean;
  optional?: boolean;
  link?: boolean;
  os?: string[];
  cpu?: string[];
  libc?: string[];
}

const posix = (p: string) => p.split(path.sep).join('/');

/**
 * Files under `dir` (recursively, following symbolic links), as paths relative to `dir` with their unix modes;
 * `skip` drops folders. One stat a file (the mode), none for a plain folder.
 */
function walk(
  dir: string,
  skip: (relative: string) => boolean = () => false,
  prefix = '',
  files = new Map<string, number>(),
): Map<string, number> {
  for (const dirent of readdirSync(path.join(dir, prefix), { withFileTypes: true })) {
    const relative = prefix ? `${prefix}/${dirent.name}` : dirent.name;
    const stat = dirent.isDirectory() ? undefined : statSync(path.join(dir, relative));
    if (!stat || stat.isDirectory()) {
      if (!skip(relative)) walk(dir, skip, relative, files);
    } else if (stat.isFile()) files.set(relative, stat.mode & 0o777);
  }
  return files;
}

const matches = (allowed: string[] | undefined, value: string) =>
  !allowed || allowed.some((a) => a === value || (a.startsWith('!') && a.slice(1) !== value));

/** Whether a package from the lockfile runs on the target (its `os`, `cpu` and `libc` fields). */
export function runsOnTarget(pkg: LockPackage, target: typeof TARGET = TARGET): boolean {
  return matches(pkg.os, target.os) && matches(pkg.cpu, target.cpu) && matches(pkg.libc, target.libc);
}

/**
 * The lockfile's production packages for the target, as their folders (`node_modules/a`,
 * `node_modules/a/node_modules/b`).
 * Optional packages for other platforms are left out; so are optional ones npm did not install (an optional
 * dependency may fail to install), but never one built for the target.
 */
export function productionPackages(root = PROJECT_ROOT, target: typeof TARGET = TARGET): string[] {
  const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockPackage>;
  };
  const folders: string[] = [];
  const problems: string[] = [];
  for (const [folder, pkg] of Object.entries(lock.packages)) {
    if (!folder.startsWith('node_modules/') || pkg.dev) continue;
    if (pkg.link) {
      problems.push(`${folder} is a link (a workspace); the zip cannot carry it`);
      continue;
    }
    const platformSpecific = Boolean(pkg.os || pkg.cpu || pkg.libc);
    if (platformSpecific && !runsOnTarget(pkg, target)) continue;
    const manifest = path.join(root, folder, 'package.json');
    if (!existsSync(manifest)) {
      if (pkg.optional && !platformSpecific) continue;
      problems.push(`${folder} ${pkg.version} is not installed`);
      continue;
    }
    const installed = (JSON.parse(readFileSync(manifest, 'utf8')) as { version?: string }).version;
    if (installed !== pkg.version) problems.push(`${folder} is ${installed} but package-lock.json says ${pkg.version}`);
    folders.push(folder);
  }
  if (problems.length)
    throw new Error(
      `node_modules does not hold the production dependencies for ${target.os}-${target.cpu} (${target.libc}):\n  ${problems.join('\n  ')}\n` +
        `Run npm ci (on another platform: npm ci --os=${target.os} --cpu=${target.cpu} --libc=${target.libc}, which installs sharp's binaries for Azure too).`,
    );
  return folders.sort();
}

/** Relative `require` targets of a compiled file (both quote styles: lazy requires use single quotes). */
function relativeRequires(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/require\((["'])(\.{1,2}\/[^"']+)\1\)/g)].map((m) => m[2]);
}

function resolveCompiled(from: string, request: string): string | undefined {
  const base = path.resolve(path.dirname(from), request);
  for (const candidate of [base, `${base}.js`, `${base}.json`, path.join(base, 'index.js')])
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  return undefined;
}

/** Built files the functions need: all of dist/functions and dist/shared, and every dist file they require. */
export function builtFiles(root = PROJECT_ROOT): string[] {
  const dist = path.join(root, 'dist');
  const functionsDir = path.join(dist, 'functions');
  if (!existsSync(functionsDir)) throw new Error(`No ${posix(path.relative(root, functionsDir))}: run npm run build`);
  const wanted = new Set<string>();
  const pending = [
    ...[...walk(functionsDir).keys()].map((f) => path.join(functionsDir, f)),
    ...[...walk(path.join(dist, 'shared')).keys()].map((f) => path.join(dist, 'shared', f)),
  ].filter((f) => !f.endsWith('.map'));
  while (pending.length) {
    const file = pending.pop()!;
    if (wanted.has(file)) continue;
    wanted.add(file);
    if (!file.endsWith('.js')) continue;
    for (const request of relativeRequires(file)) {
      const target = resolveCompiled(file, request);
      if (!target) throw new Error(`${posix(path.relative(root, file))} requires ${request}, which is not built`);
      if (!path.relative(dist, target).startsWith('..')) pending.push(target);
    }
  }
  return [...wanted].map((f) => posix(path.relative(root, f)));
}

/** The package.json at the zip root: what the host reads (`main`) and the health route's version, nothing for npm. */
export function deployedManifest(root = PROJECT_ROOT): Buffer {
  const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
  const keep = ['name', 'version', 'description', 'license', 'private', 'main', 'engines', 'dependencies'];
  const trimmed = Object.fromEntries(keep.filter((k) => k in manifest).map((k) => [k, manifest[k]]));
  return Buffer.from(`${JSON.stringify(trimmed, null, 2)}\n`);
}

/** Every entry of the zip, sorted by name. */
export function packageEntries(root = PROJECT_ROOT, target: typeof TARGET = TARGET): ZipEntry[] {
  const fileEntry = (name: string, file = path.join(root, name)): ZipEntry => ({
    name,
    source: file,
    mode: statSync(file).mode & 0o777,
  });
  const entries: ZipEntry[] = [
    fileEntry('host.json'),
    { name: 'package.json', source: deployedManifest(root), mode: 0o644 },
    ...builtFiles(root).map((f) => fileEntry(f)),
    ...[...walk(path.join(root, 'shared/http/dashboard')).keys()].map((f) => fileEntry(`shared/http/dashboard/${f}`)),
  ];
  const modules = realpathSync(path.join(root, 'node_modules'));
  for (const folder of productionPackages(root, target)) {
    const dir = path.join(modules, folder.slice('node_modules/'.length));
    // nested node_modules are packages of their own in the lockfile: taken (or not) on their own
    for (const [f, mode] of walk(dir, (relative) => relative === 'node_modules'))
      entries.push({ name: `${folder}/${f}`, source: path.join(dir, f), mode });
  }
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Builds the zip from the (already built) project; returns what it wrote. */
export async function packageApp(
  out = DEFAULT_OUT,
  root = PROJECT_ROOT,
): Promise<{ out: string; files: number; bytes: number }> {
  const entries = packageEntries(root);
  mkdirSync(path.dirname(out), { recursive: true });
  await writeZip(entries, out);
  return { out, files: entries.length, bytes: statSync(out).size };
}

if (require.main === module) {
  const started = Date.now();
  const out = process.argv[2] ? path.resolve(process.argv[2]) : DEFAULT_OUT;
  packageApp(out).then(
    ({ files, bytes }) => {
      const mb = (bytes / 1024 / 1024).toFixed(1);
      const where = posix(path.relative(process.cwd(), out)) || out;
      console.log(`Wrote ${where}: ${files} files, ${mb} MB, in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      console.log(`Deploy it: az functionapp deployment source config-zip -g <group> -n <app> --src ${where}`);
    },
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}

/** For tests: the production folders npm itself reports (`npm ls --omit=dev --parseable --all`). */
export function npmProductionFolders(root = PROJECT_ROOT): string[] {
  const out = execFileSync('npm', ['ls', '--omit=dev', '--parseable', '--all'], { cwd: root, encoding: 'utf8' });
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => posix(path.relative(root, line)))
    .filter((f) => f.startsWith('node_modules/'))
    .sort();
}
