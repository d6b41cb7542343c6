/**
 * scripts/package.ts on a small made-up project: which files go in, which packages (production only, the target
 * platform's binaries only), and the same bytes for the same tree whatever the files' timestamps.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageApp, packageEntries, productionPackages, runsOnTarget } from '../../../scripts/package';

let root: string;

function write(relative: string, text = `${relative}\n`, mode = 0o644) {
  const file = path.join(root, relative);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  chmodSync(file, mode);
}

const pkg = (name: string, version = '1.0.0') => JSON.stringify({ name, version });

beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'package-unit-'));
  write('host.json', '{ "version": "2.0" }\n');
  write(
    'package.json',
    JSON.stringify({
      name: 'app',
      version: '1.2.3',
      main: 'dist/functions/*.js',
      scripts: { build: 'tsc' },
      dependencies: { a: '1', c: '1' },
      devDependencies: { b: '1' },
    }),
  );
  write(
    'package-lock.json',
    JSON.stringify({
      packages: {
        '': { name: 'app' },
        'node_modules/a': { version: '1.0.0' },
        'node_modules/b': { version: '1.0.0', dev: true },
        'node_modules/c': { version: '1.0.0' },
        'node_modules/c/node_modules/d': { version: '2.0.0' },
        'node_modules/@img/sharp-linux-x64': {
          version: '1.0.0',
          optional: true,
          os: ['linux'],
          cpu: ['x64'],
          libc: ['glibc'],
        },
        'node_modules/@img/sharp-darwin-arm64': { version: '1.0.0', optional: true, os: ['darwin'], cpu: ['arm64'] },
        'node_modules/@img/sharp-wasm32': { version: '1.0.0', optional: true },
      },
    }),
  );
  write('node_modules/a/package.json', pkg('a'));
  write('node_modules/a/bin/run', '#!/bin/sh\n', 0o755);
  write('node_modules/b/package.json', pkg('b'));
  write('node_modules/c/package.json', pkg('c'));
  write('node_modules/c/node_modules/d/package.json', pkg('d', '2.0.0'));
  write('node_modules/@img/sharp-linux-x64/package.json', pkg('@img/sharp-linux-x64'));
  write('node_modules/@img/sharp-darwin-arm64/package.json', pkg('@img/sharp-darwin-arm64'));
  write('dist/package.json', '{}');
  write('dist/functions/jobs.js', 'require("../shared/x"); require(\'../scripts/used\');');
  write('dist/functions/jobs.js.map', '{}');
  write('dist/shared/x.js', 'require("sharp"); require("../package.json");');
  write('dist/scripts/used.js', '');
  write('dist/scripts/cli.js', '');
  write('shared/http/dashboard/index.html', '<html></html>');
  write('shared/http/respond.ts', '');
  write('local.settings.json', '{}');
  write('tests/a.test.ts', '');
});

afterEach(() => rmSync(root, { recursive: true, force: true }));

it('takes the host files, the built files the functions load, the dashboard and the production packages', () => {
  expect(packageEntries(root).map((e) => e.name)).toEqual([
    'dist/functions/jobs.js',
    'dist/package.json',
    'dist/scripts/used.js',
    'dist/shared/x.js',
    'host.json',
    'node_modules/@img/sharp-linux-x64/package.json',
    'node_modules/a/bin/run',
    'node_modules/a/package.json',
    'node_modules/c/node_modules/d/package.json',
    'node_modules/c/package.json',
    'package.json',
    'shared/http/dashboard/index.html',
  ]);
  expect(packageEntries(root).find((e) => e.name === 'node_modules/a/bin/run')?.mode).toBe(0o755);
  const manifest = JSON.parse(String(packageEntries(root).find((e) => e.name === 'package.json')!.source));
  expect(manifest).toEqual({
    name: 'app',
    version: '1.2.3',
    main: 'dist/functions/*.js',
    dependencies: { a: '1', c: '1' },
  });
});

it('writes the same bytes for the same tree, whatever the files’ timestamps', async () => {
  const first = path.join(root, 'out/1.zip');
  const second = path.join(root, 'out/2.zip');
  await packageApp(first, root);
  utimesSync(path.join(root, 'dist/shared/x.js'), new Date(2020, 1, 1), new Date(2020, 1, 1));
  await packageApp(second, root);
  expect(readFileSync(second).equals(readFileSync(first))).toBe(true);
  write('dist/shared/x.js', 'require("sharp"); require("../package.json"); // changed');
  await packageApp(second, root);
  expect(readFileSync(second).equals(readFileSync(first))).toBe(false);
});

it('writes the same bytes in every time zone', () => {
  // a process of its own per zone: TZ is read when the process starts (the built script; npm test builds first)
  const script = path.resolve(__dirname, '../../../dist/scripts/package.js');
  const zips = ['UTC', 'Pacific/Auckland', 'America/Los_Angeles'].map((tz) => {
    const out = path.join(root, `out/${tz.replace('/', '-')}.zip`);
    execFileSync(
      process.execPath,
      ['-e', `require(${JSON.stringify(script)}).packageApp(process.argv[1], process.argv[2])`, out, root],
      {
        env: { ...process.env, TZ: tz },
      },
    );
    return readFileSync(out);
  });
  expect(zips[1].equals(zips[0])).toBe(true);
  expect(zips[2].equals(zips[0])).toBe(true);
});

it('fails, naming the fix, when a production package or the target binary is missing or stale', () => {
  rmSync(path.join(root, 'node_modules/@img/sharp-linux-x64'), { recursive: true });
  write('node_modules/c/package.json', pkg('c', '0.9.0'));
  expect(() => productionPackages(root)).toThrow(
    /node_modules\/c is 0\.9\.0 but package-lock\.json says 1\.0\.0\n.*@img\/sharp-linux-x64 1\.0\.0 is not installed[\s\S]*npm ci --os=linux --cpu=x64 --libc=glibc/,
  );
});

it('matches a package to the target by its os, cpu and libc fields', () => {
  expect(runsOnTarget({ os: ['linux'], cpu: ['x64'], libc: ['glibc'] })).toBe(true);
  expect(runsOnTarget({ os: ['linux'], cpu: ['x64'], libc: ['musl'] })).toBe(false);
  expect(runsOnTarget({ os: ['!win32'] })).toBe(true);
  expect(runsOnTarget({ os: ['darwin'] })).toBe(false);
  expect(runsOnTarget({})).toBe(true);
});
