/**
 * The settings of `npm start` and of the local Functions host: how to run the app on one machine,
 * not how the app behaves (those are shared/config.ts). Same table form and checks: read once,
 * every bad value reported at once.
 */
import { readSettings, type IntegerSetting, type SettingsOf } from '../shared/config';
import { DEFAULT_AZURITE_PORTS } from '../shared/storage/connection';

const port = (env: string, fallback: number, meaning: string): IntegerSetting => ({
  kind: 'integer',
  env,
  fallback,
  min: 1,
  max: 65535,
  meaning,
  reason: 'the port Core Tools and Azurite use by default, so tools and docs work unchanged',
});

export const RUN_SETTINGS = {
  port: port('PORT', 7071, 'port of the Functions host (the API)'),
  azuriteBlobPort: port('AZURITE_BLOB_PORT', DEFAULT_AZURITE_PORTS.blob, 'port of Azurite blob service'),
  azuriteQueuePort: port('AZURITE_QUEUE_PORT', DEFAULT_AZURITE_PORTS.queue, 'port of Azurite queue service'),
  azuriteTablePort: port('AZURITE_TABLE_PORT', DEFAULT_AZURITE_PORTS.table, 'port of Azurite table service'),
  graceMs: {
    kind: 'integer',
    env: 'LOCAL_HOST_GRACE_MS',
    fallback: 25000,
    min: 0,
    max: 600_000,
    meaning: 'the longest a stop (Ctrl-C, SIGTERM) waits for running functions',
    reason: 'a heavy 4K task takes seconds; 25 s stays under the 30 s a container runtime allows by default',
  },
  queueLeaseSeconds: {
    kind: 'integer',
    env: 'LOCAL_HOST_QUEUE_LEASE_SECONDS',
    fallback: 600,
    min: 1,
    max: 3600,
    meaning: 'how long the local host keeps a message hidden while its function runs (renewed at half-time)',
    reason:
      "the real host's queue listener hides a running message for 10 minutes, renewed at half-time (QueueListener.cs); tests set less so a killed host returns its messages quickly",
  },
} as const satisfies Record<string, IntegerSetting>;

export type RunSettings = SettingsOf<typeof RUN_SETTINGS>;

export function loadRunSettings(env: NodeJS.ProcessEnv = process.env): RunSettings {
  return readSettings(RUN_SETTINGS, env);
}
