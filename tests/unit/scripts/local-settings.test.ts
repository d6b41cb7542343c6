import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadLocalSettings } from '../../../scripts/local-settings';
import { parseTimeSpan, readHostConfig } from '../../../scripts/local-host/host-config';

describe('local.settings.json and host.json, read as func reads them', () => {
  it('puts Values into the environment without overriding variables already set', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'settings-'));
    writeFileSync(
      path.join(dir, 'local.settings.json'),
      JSON.stringify({ IsEncrypted: false, Values: { A: 'from-file', B: 2 } }),
    );
    const env: NodeJS.ProcessEnv = { A: 'from-env' };
    expect(loadLocalSettings(dir, env)).toEqual(['B']);
    expect(env).toEqual({ A: 'from-env', B: '2' });
    expect(loadLocalSettings(path.join(dir, 'missing'), env)).toEqual([]);
  });

  it("reads the project's host.json queue settings and time spans", () => {
    expect(readHostConfig(path.resolve(__dirname, '../../..'), {})).toEqual({
      routePrefix: 'api',
      functionTimeoutMs: 600000,
      functions: null,
      queues: {
        batchSize: 8,
        newBatchThreshold: 4,
        maxPollingIntervalMs: 500,
        visibilityTimeoutMs: 10000,
        maxDequeueCount: 5,
        messageEncoding: 'base64',
      },
      // SingletonOptions.cs: ListenerLockPeriod 15 s in Development (func start), recovery polling 1 minute
      singleton: { listenerLockPeriodMs: 15_000, listenerLockRecoveryPollingIntervalMs: 60_000 },
    });
    expect(parseTimeSpan('1.02:03:04.5', 'x')).toBe(((26 * 60 + 3) * 60 + 4) * 1000 + 500);
    expect(() => parseTimeSpan('10s', 'extensions.queues.visibilityTimeout')).toThrow(
      'host.json extensions.queues.visibilityTimeout: expected a time span like "00:00:30" but received "10s"',
    );
  });

  // HostJsonFileConfigurationSource.cs (azure-functions-host src/WebJobs.Script/Config/): host.json is the
  // configuration section AzureFunctionsJobHost, and environment variables override it, keys case-insensitive;
  // SingletonOptions.cs (azure-webjobs-sdk) bounds the lock periods.
  it('AzureFunctionsJobHost__* settings override host.json, and singleton options are bounded as the host bounds them', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hostjson-'));
    writeFileSync(
      path.join(dir, 'host.json'),
      JSON.stringify({
        version: '2.0',
        extensions: { queues: { batchSize: 16 } },
        singleton: { listenerLockPeriod: '00:00:30' },
      }),
    );
    const config = readHostConfig(dir, {
      AzureFunctionsJobHost__extensions__queues__BATCHSIZE: '3',
      AzureFunctionsJobHost__extensions__http__routePrefix: 'v1',
      AzureFunctionsJobHost__singleton__listenerLockRecoveryPollingInterval: '00:00:15',
      AZURE_FUNCTIONS_ENVIRONMENT: 'Production',
    });
    expect(config.queues.batchSize).toBe(3);
    expect(config.queues.newBatchThreshold).toBe(1);
    expect(config.routePrefix).toBe('v1');
    expect(config.singleton).toEqual({ listenerLockPeriodMs: 30_000, listenerLockRecoveryPollingIntervalMs: 15_000 });
    expect(
      readHostConfig(dir, { AzureFunctionsJobHost__singleton__listenerLockPeriod: '' }).singleton.listenerLockPeriodMs,
    ).toBe(15_000);
    expect(
      readHostConfig(dir, {
        AzureFunctionsJobHost__singleton__listenerLockPeriod: '',
        AZURE_FUNCTIONS_ENVIRONMENT: 'Production',
      }).singleton.listenerLockPeriodMs,
    ).toBe(60_000);
    expect(() => readHostConfig(dir, { AzureFunctionsJobHost__singleton__listenerLockPeriod: '00:00:05' })).toThrow(
      `host.json singleton.listenerLockPeriod: expected between 00:00:15 and 00:01:00 (a blob lease's range) but received "00:00:05"`,
    );
    expect(() =>
      readHostConfig(dir, { AzureFunctionsJobHost__singleton__listenerLockRecoveryPollingInterval: '00:00:02' }),
    ).toThrow('singleton.listenerLockRecoveryPollingInterval: expected at least 00:00:15 but received "00:00:02"');
    expect(() => readHostConfig(dir, { AzureFunctionsJobHost__extensions__queues__batchSize: 'many' })).toThrow(
      'host.json extensions.queues.batchSize: expected an integer but received "many"',
    );
  });

  // QueuesOptions.cs in azure-sdk-for-net (sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Queues/src/Config/):
  // its setters refuse these values, so the real host does not start with them
  it("bounds the queue settings as the queue extension's QueuesOptions does", () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'host-json-'));
    writeFileSync(path.join(dir, 'host.json'), JSON.stringify({ version: '2.0' }));
    const queues = (env: NodeJS.ProcessEnv) =>
      readHostConfig(
        dir,
        Object.fromEntries(Object.entries(env).map(([k, v]) => [`AzureFunctionsJobHost__extensions__queues__${k}`, v])),
      ).queues;
    // the smallest and largest values it takes (MaxPollingInterval: QueuePollingIntervals.Minimum, 100 ms)
    expect(
      queues({ batchSize: '1', newBatchThreshold: '0', maxPollingInterval: '00:00:00.100', maxDequeueCount: '1' }),
    ).toMatchObject({ batchSize: 1, newBatchThreshold: 0, maxPollingIntervalMs: 100, maxDequeueCount: 1 });
    expect(queues({ batchSize: '32' }).batchSize).toBe(32);
    const refused: [Record<string, string>, string][] = [
      [{ batchSize: '0' }, 'batchSize: expected at least 1 but received 0'],
      [{ batchSize: '33' }, 'batchSize: expected at most 32 (the most one receive returns) but received 33'],
      [{ newBatchThreshold: '-1' }, 'newBatchThreshold: expected at least 0 but received -1'],
      [
        { maxPollingInterval: '00:00:00.050' },
        'maxPollingInterval: expected at least 00:00:00.100 (100 ms) but received 50',
      ],
      [{ maxDequeueCount: '0' }, 'maxDequeueCount: expected at least 1 but received 0'],
    ];
    for (const [env, message] of refused) expect(() => queues(env)).toThrow(`host.json extensions.queues.${message}`);
    // the project's own host.json is within them (it polls at 0.5 s)
    expect(readHostConfig(path.resolve(__dirname, '../../..'), {}).queues.maxPollingIntervalMs).toBeGreaterThanOrEqual(
      100,
    );
  });
});
