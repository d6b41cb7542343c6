/**
 * One Node.js story everywhere. Production (infra/Dockerfile, and so Kubernetes and Azure) runs PRODUCTION_NODE;
 * development and CI may run MIN_NODE or newer of its major (Node 20 is past end of life and stays allowed only
 * while the CI machines cannot install Node 22). package.json engines, .ci/run, the README and the image must say
 * the same, and the production Node must satisfy every runtime dependency's own engines range.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDockerfile } from '../helpers/dockerfile';

const ROOT = path.resolve(__dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const pkg = JSON.parse(read('package.json')) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
};
const lock = JSON.parse(read('package-lock.json')) as {
  packages: Record<
    string,
    { version?: string; dev?: boolean; os?: string[]; cpu?: string[]; engines?: { node?: string } | string[] }
  >;
};
/** Installed where the app runs (the image is Debian, glibc, x64) and where it is developed (Linux x64). */
const onLinuxX64 = (p: { os?: string[]; cpu?: string[] }) =>
  (!p.os || p.os.includes('linux')) && (!p.cpu || p.cpu.includes('x64'));
const ci = read('.ci/run');
const readme = read('README.md');

type Version = [number, number, number];
const parse = (v: string): Version => {
  const m = /^v?(\d+)(?:\.(\d+|x|\*))?(?:\.(\d+|x|\*))?$/.exec(v.trim());
  if (!m) throw new Error(`not a version: '${v}'`);
  return [Number(m[1]), m[2] && /\d/.test(m[2]) ? Number(m[2]) : 0, m[3] && /\d/.test(m[3]) ? Number(m[3]) : 0];
};
const cmp = (a: Version, b: Version) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];

/** Whether `version` satisfies an npm engines range of the forms packages use (||, >=, >, <, <=, ^, ~, x). */
export function satisfies(version: string, range: string): boolean {
  const v = parse(version);
  return range.split('||').some((alternative) =>
    alternative
      .replace(/(>=|<=|>|<|\^|~|=)\s+/g, '$1') // '>= 14' is '>=14'
      .trim()
      .split(/\s+/)
      .every((comparator) => {
        if (comparator === '*' || comparator === '') return true;
        const m = /^(>=|<=|>|<|\^|~|=)?\s*(.+)$/.exec(comparator)!;
        const [op, text] = [m[1] ?? '', m[2]];
        const target = parse(text);
        const parts = text.split('.').filter((p) => /^\d+$/.test(p)).length;
        switch (op) {
          case '>=':
            return cmp(v, target) >= 0;
          case '>':
            return cmp(v, target) > 0;
          case '<':
            return cmp(v, target) < 0;
          case '<=':
            return cmp(v, target) <= 0;
          case '^':
            return cmp(v, target) >= 0 && v[0] === target[0];
          case '~':
            return cmp(v, target) >= 0 && v[0] === target[0] && (parts < 2 || v[1] === target[1]);
          default: // 20, 20.9, 20.9.1: the same release line
            return v.slice(0, parts).every((n, i) => n === target[i]);
        }
      }),
  );
}

const variable = (name: string) => new RegExp(`^${name}=(\\S+)`, 'm').exec(ci)?.[1];
const PRODUCTION_NODE = variable('PRODUCTION_NODE')!;
const MIN_NODE = variable('MIN_NODE')!;

/** Runtime dependencies whose engines leave out the development minimum: the EBADENGINE warnings of npm ci. */
const BELOW_22 = Object.entries(lock.packages)
  .filter(([name, p]) => name && !p.dev && onLinuxX64(p) && typeof (p.engines as { node?: string })?.node === 'string')
  .filter(([, p]) => !satisfies(MIN_NODE, (p.engines as { node: string }).node))
  .map(([name]) => name.replace(/^.*node_modules\//, ''))
  .sort();

it('the range reader handles the forms in the lockfile', () => {
  expect(satisfies('20.20.2', '>=20.9')).toBe(true);
  expect(satisfies('20.20.2', '>=22.0.0')).toBe(false);
  expect(satisfies('22.0.0', '^18.18.0 || ^20.9.0 || >=21.1.0')).toBe(true);
  expect(satisfies('21.0.0', '^20.9.0 || >=22')).toBe(false);
  expect(satisfies('20.8.0', '^20.9.0 || >=22')).toBe(false);
  expect(satisfies('20.1.0', '18 || 20 || >=22')).toBe(true);
  expect(satisfies('14.0.0', '>=12 <14')).toBe(false);
  expect(satisfies('20.20.2', '>= 14')).toBe(true);
  expect(() => satisfies('22.0.0', '>=lts')).toThrow(/not a version/);
});

it('.ci/run names the production Node major and the development minimum', () => {
  expect(PRODUCTION_NODE).toMatch(/^\d+$/);
  expect(MIN_NODE).toMatch(/^\d+\.\d+$/);
  expect(ci).toMatch(/"\$MIN_NODE" "\$PRODUCTION_NODE"/); // the check that uses them runs
});

it('package.json engines allow exactly the development minimum upwards on its line and production onwards', () => {
  const engines = pkg.engines.node;
  const [minMajor, minMinor] = MIN_NODE.split('.').map(Number);
  expect(satisfies(`${MIN_NODE}.0`, engines)).toBe(true);
  expect(satisfies(`${minMajor}.${minMinor - 1}.0`, engines)).toBe(false);
  expect(satisfies(`${PRODUCTION_NODE}.0.0`, engines)).toBe(true);
  for (let major = minMajor + 1; major < Number(PRODUCTION_NODE); major++)
    expect(satisfies(`${major}.0.0`, engines)).toBe(false);
  // the type definitions are those of the oldest allowed Node, so no newer API slips into the code
  expect(pkg.devDependencies['@types/node']).toMatch(new RegExp(`^\\^${minMajor}\\.`));
});

it('every stage of infra/Dockerfile runs the production Node major', () => {
  const froms = parseDockerfile(read('infra/Dockerfile')).map((s) => s.from);
  expect(froms.length).toBeGreaterThan(0);
  for (const from of froms) {
    const major = /^node:(\d+)-/.exec(from)?.[1] ?? /azure-functions\/node:\d+-node(\d+)$/.exec(from)?.[1];
    expect([from, major]).toEqual([from, PRODUCTION_NODE]);
  }
});

it('the production Node satisfies every runtime dependency; the ones that leave out Node 20 are listed', () => {
  const unsatisfied = Object.entries(lock.packages)
    .filter(
      ([name, p]) => name && !p.dev && onLinuxX64(p) && typeof (p.engines as { node?: string })?.node === 'string',
    )
    .filter(([, p]) => !satisfies(`${PRODUCTION_NODE}.0.0`, (p.engines as { node: string }).node))
    .map(([name]) => name);
  expect(unsatisfied).toEqual([]);
  // A new one changes what npm ci warns about on the development Node: the README must list it.
  for (const name of BELOW_22) expect(readme).toContain(`\`${name}\``);
});

it('the README states the same versions', () => {
  const quickStart = /## Quick start\n([\s\S]*?)\n## /.exec(readme)![1];
  expect(quickStart).toContain(`Node.js ${PRODUCTION_NODE}`);
  expect(quickStart).toContain(`Node.js ${MIN_NODE}`);
  expect(readme).not.toMatch(/Node\.js \d+ or newer/); // the old, vague wording
  for (const [, major] of readme.matchAll(/node:4-node(\d+)/g)) expect(major).toBe(PRODUCTION_NODE);
});
