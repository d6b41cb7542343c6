/**
 * infra/Dockerfile without a Docker daemon: its stages, its base image, and that the runtime
 * stage receives built output and production dependencies only, plus what the app reads at run time.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { HTTP_PORT } from '../../scripts/k8s';
import { ALLOCATOR_ENV } from '../../shared/config';
import { copies, parseDockerfile, steps } from '../helpers/dockerfile';

const ROOT = path.resolve(__dirname, '../..');

const stages = parseDockerfile(readFileSync(path.join(ROOT, 'infra/Dockerfile'), 'utf8'));
const runtime = stages[stages.length - 1];
it('is multi-stage: a build stage compiles, a deps stage installs production dependencies', () => {
  expect(stages.length).toBeGreaterThanOrEqual(3);
  const build = stages.find((s) => steps(s, 'RUN').some((r) => /npm run build/.test(r)))!;
  expect(build?.name).toBeTruthy();
  expect(steps(build, 'RUN').some((r) => /^npm ci\b/.test(r) && !/--omit=dev/.test(r))).toBe(true);
  const deps = stages.find((s) => steps(s, 'RUN').some((r) => /^npm ci\b.*--omit=dev/.test(r)))!;
  expect(deps?.name).toBeTruthy();
  // both build from the lockfile with the Node major the runtime runs
  for (const stage of [build, deps]) {
    expect(stage.from).toMatch(/^node:22\b/);
    expect(copies(stage)[0].sources).toEqual(['package.json', 'package-lock.json']);
  }
});

it('runs on the Azure Functions Node 22 image, as a non-root user, with a health check', () => {
  expect(runtime.from).toBe('mcr.microsoft.com/azure-functions/node:4-node22');
  const user = steps(runtime, 'USER');
  expect(user).toHaveLength(1);
  expect(user[0]).toMatch(/^[1-9]\d*$/); // numeric, so Kubernetes can verify runAsNonRoot
  expect(steps(runtime, 'HEALTHCHECK')[0]).toMatch(/\/admin\/host\/ping/);
  const env = steps(runtime, 'ENV').join(' ');
  expect(env).toContain('AzureWebJobsScriptRoot=/home/site/wwwroot');
  expect(env).toContain(`ASPNETCORE_URLS=http://+:${HTTP_PORT}`);
  // the host and its Node worker start with the allocator sharp needs, as npm start runs them
  for (const [name, value] of Object.entries(ALLOCATOR_ENV)) expect(env).toContain(`${name}=${value}`);
  expect(steps(runtime, 'EXPOSE')).toEqual([String(HTTP_PORT)]);
  expect(steps(runtime, 'HEALTHCHECK')[0]).toContain(`:${HTTP_PORT}/`);
});

it('copies built output and production dependencies only into the runtime stage', () => {
  const byName = new Map(stages.map((s) => [s.name, s]));
  const build = stages.find((s) => steps(s, 'RUN').some((r) => /npm run build/.test(r)))!;
  const deps = stages.find((s) => steps(s, 'RUN').some((r) => /--omit=dev/.test(r)))!;
  const all = copies(runtime);
  for (const c of all.filter((x) => x.from)) {
    expect(byName.has(c.from)).toBe(true);
    if (c.from === deps.name) expect(c.sources).toEqual(['/src/node_modules']);
    else if (c.from === build.name) expect(c.sources).toEqual(['/src/dist']);
    else throw new Error(`runtime copies from unexpected stage ${c.from}`);
  }
  // from the build context: only what the host reads, never sources or the whole context
  const local = all.filter((x) => !x.from).flatMap((x) => x.sources);
  expect(local.sort()).toEqual(['host.json', 'package.json', 'shared/http/dashboard']);
  for (const source of local) expect(existsSync(path.join(ROOT, source))).toBe(true);
  // package.json main (the function files) is inside the built output the stage receives
  const main = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { main: string }).main;
  expect(main.startsWith('dist/')).toBe(true);
});

it('keeps local state and secrets out of the build context, but not what the build needs', () => {
  const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.git', 'local.settings.json', '.azurite']));
  const needed = stages.flatMap((s) =>
    copies(s)
      .filter((c) => !c.from)
      .flatMap((c) => c.sources),
  );
  for (const source of needed)
    expect(ignored.filter((pattern) => source === pattern || source.startsWith(`${pattern}/`))).toEqual([]);
  for (const source of needed) expect(existsSync(path.join(ROOT, source))).toBe(true);
});

it('the function files and what they load lazily need production dependencies only (npm ci --omit=dev)', () => {
  // Load every function file the way the host does, plus the modules loaded on first use, and list the files Node read.
  const script = `
    require('./dist/scripts/local-host/functions-core').installFunctionsCore();
    for (const f of require('./dist/scripts/local-host/loader').functionFiles(process.cwd())) require(f);
    for (const lazy of ['applicationinsights', '@opentelemetry/resources', 'chart.js']) require(lazy);
    process.stdout.write(JSON.stringify(Object.keys(require.cache)));`;
  const loaded = JSON.parse(
    execFileSync(process.execPath, ['-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, AzureWebJobsStorage: 'UseDevelopmentStorage=true' },
    }),
  ) as string[];
  const production = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  })
    .split('\n')
    .filter((dir) => dir.includes(`${path.sep}node_modules${path.sep}`));
  const fromPackages = loaded.filter((file) => file.includes(`${path.sep}node_modules${path.sep}`));
  expect(fromPackages.length).toBeGreaterThan(50);
  // debug tries require('supports-color') in a try/catch and works without it (no colours).
  const optional = ['supports-color', 'has-flag'].map((name) => `${path.sep}node_modules${path.sep}${name}${path.sep}`);
  const outside = fromPackages.filter(
    (file) =>
      !production.some((dir) => file.startsWith(`${dir}${path.sep}`)) && !optional.some((o) => file.includes(o)),
  );
  expect(outside).toEqual([]);
}, 60000);

it('starts the host under tini in exec form, so SIGTERM reaches it and a scale-in can shut down cleanly', () => {
  // The base image's CMD runs the host from a bash script without `exec` (Azure/azure-functions-docker
  // host/4/bookworm/node/node22/node22.Dockerfile and start_nonappservice.sh, commit 020dbf31):
  // bash as PID 1 neither receives SIGTERM (no handler) nor forwards it. The runtime stage replaces it.
  const entrypoint = steps(runtime, 'ENTRYPOINT');
  const cmd = steps(runtime, 'CMD');
  expect(entrypoint).toHaveLength(1);
  expect(cmd).toHaveLength(1);
  // exec form (JSON): no shell in between that would swallow the signal
  expect(JSON.parse(entrypoint[0])).toEqual(['/usr/bin/tini', '--']);
  expect(JSON.parse(cmd[0])).toEqual(['/azure-functions-host/Microsoft.Azure.WebJobs.Script.WebHost']);
  // tini comes from Debian's package, installed while the stage still runs as root
  const order = runtime.steps.map((s) => s.op);
  const install = runtime.steps.findIndex((s) => s.op === 'RUN' && /apt-get install\b.*\btini\b/.test(s.args));
  expect(install).toBeGreaterThanOrEqual(0);
  expect(install).toBeLessThan(order.indexOf('USER'));
  // SIGTERM is the signal Kubernetes and `docker stop` send; nothing changes it
  expect(steps(runtime, 'STOPSIGNAL')).toEqual([]);
});
