/** The test Azurite: in memory, on free ports, and it leaves nothing behind when stopped. */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { freePorts, startAzurite } from '../../../scripts/azurite';

it('stops without leaving its scratch directory in the temp folder', async () => {
  const azurite = await startAzurite();
  const cwd = execFileSync('readlink', [`/proc/${azurite.pid}/cwd`], { encoding: 'utf8' }); // Linux
  expect(cwd.trim()).toMatch(/azurite-/);
  expect(existsSync(cwd.trim())).toBe(true);
  await azurite.stop();
  expect(existsSync(cwd.trim())).toBe(false);
}, 30_000);

it('hands out distinct free ports, so Azurite never gets one port for two services', async () => {
  for (let i = 0; i < 20; i++) expect(new Set(await freePorts(3)).size).toBe(3);
});
