/** `npm run clean` deletes Azurite's data where `npm start` keeps it: AZURITE_LOCATION, else .azurite. */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { clean, unsafeToDelete } from '../../../scripts/clean';
import { azuriteLocation, PROJECT_ROOT } from '../../../scripts/paths';

const run = promisify(execFile);

function project(): string {
  const root = mkdtempSync(path.join(tmpdir(), 'clean-'));
  writeFileSync(path.join(root, 'package.json'), '{}');
  return root;
}

function dataIn(dir: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, '__azurite_db_blob__.json'), '{}');
  return dir;
}

it('deletes AZURITE_LOCATION when it is set, relative to the project, and .azurite otherwise', () => {
  const root = project();
  const custom = dataIn(path.join(root, 'data', 'azurite'));
  const fallback = dataIn(path.join(root, '.azurite'));
  expect(clean({ AZURITE_LOCATION: 'data/azurite' }, root)).toBe(`Deleted the local Azurite data in ${custom}`);
  expect([existsSync(custom), existsSync(fallback)]).toEqual([false, true]);
  expect(clean({}, root)).toBe(`Deleted the local Azurite data in ${fallback}`);
  expect(existsSync(fallback)).toBe(false);
  expect(clean({}, root)).toBe(`Nothing to delete: ${fallback} does not exist`);
});

it('uses the same location as npm start (an empty AZURITE_LOCATION means the default)', () => {
  expect(azuriteLocation({}, '/p')).toBe('/p/.azurite');
  expect(azuriteLocation({ AZURITE_LOCATION: '' }, '/p')).toBe('/p/.azurite');
  expect(azuriteLocation({ AZURITE_LOCATION: '/var/azurite' }, '/p')).toBe('/var/azurite');
  expect(readFileSync(path.join(PROJECT_ROOT, 'scripts/start.ts'), 'utf8')).toContain('azuriteLocation()');
});

it('refuses a location that would delete the project, its parents, home or /', () => {
  const root = project();
  for (const location of ['.', '..', '/']) {
    expect(() => clean({ AZURITE_LOCATION: location }, root)).toThrow(/^Not deleting AZURITE_LOCATION /);
  }
  expect(existsSync(path.join(root, 'package.json'))).toBe(true);
  expect(unsafeToDelete(path.join(root, '.azurite'), root)).toBeUndefined();
  expect(unsafeToDelete(path.join(root, '..', 'sibling'), root)).toBeUndefined();
});

it('npm run clean runs the built script, which honours AZURITE_LOCATION from the environment', async () => {
  const scripts = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')).scripts;
  expect(scripts.clean).toMatch(/node dist\/scripts\/clean\.js$/);
  const data = dataIn(path.join(mkdtempSync(path.join(tmpdir(), 'clean-data-')), 'azurite'));
  const { stdout } = await run(process.execPath, [path.join(PROJECT_ROOT, 'dist/scripts/clean.js')], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, AZURITE_LOCATION: data },
  });
  expect(stdout.trim()).toBe(`Deleted the local Azurite data in ${data}`);
  expect(existsSync(data)).toBe(false);
});
