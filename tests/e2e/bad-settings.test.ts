/**
 * A bad app setting stops the app when its function files load, with every problem named at once,
 * instead of a NaN or a 500 at the first request that reads it (the settings table is shared/config.ts).
 */
import { spawnSync } from 'node:child_process';
import { HOST_MAIN } from '../helpers/host';

it('the local host refuses to start, naming each bad variable, its allowed values and what it found', () => {
  const run = spawnSync(process.execPath, [HOST_MAIN, '--port', '0'], {
    env: { ...process.env, MAX_BODY_BYTES: '10MB', METRICS_SCHEDULE: 'every minute', WORKER_SLOTS: '0' },
    encoding: 'utf8',
    timeout: 20000,
  });
  expect(run.status).toBe(1);
  expect(run.stdout).not.toMatch(/Host listening/);
  expect(run.stderr).toContain("Expected an integer between 1 and 1073741824 for MAX_BODY_BYTES but received '10MB'");
  expect(run.stderr).toContain("for METRICS_SCHEDULE but received 'every minute'");
  expect(run.stderr).toContain("Expected an integer between 1 and 1000 for WORKER_SLOTS but received '0'");
});

it('the local host refuses to start without a storage connection, naming the settings it takes', () => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^AzureWebJobsStorage/i.test(k)));
  // blank, so local.settings.json's UseDevelopmentStorage=true (loaded only for variables not set) stays out
  const run = spawnSync(process.execPath, [HOST_MAIN, '--port', '0'], {
    env: { ...env, AzureWebJobsStorage: '' },
    encoding: 'utf8',
    timeout: 20000,
  });
  expect(run.status).toBe(1);
  expect(run.stdout).not.toMatch(/Host listening/);
  expect(run.stderr).toContain(
    'AzureWebJobsStorage is not set: expected a storage connection string (or UseDevelopmentStorage=true) in AzureWebJobsStorage, ' +
      'or an identity-based connection in AzureWebJobsStorage__accountName or AzureWebJobsStorage__blobServiceUri',
  );
});
