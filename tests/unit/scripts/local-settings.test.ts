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
        batchSize: 4,
        newBatchThreshold: 2,
        maxPollingIntervalMs: 2000,
        visibilityTimeoutMs: 10000,
        maxDequeueCount: 5,
        messageEncoding: 'base64',
      },
    });
    expect(parseTimeSpan('1.02:03:04.5', 'x')).toBe(((26 * 60 + 3) * 60 + 4) * 1000 + 500);
    expect(() => parseTimeSpan('10s', 'extensions.queues.visibilityTimeout')).toThrow(
      'host.json extensions.queues.visibilityTimeout: expected a time span like "00:00:30" but received "10s"',
    );
  });
});
