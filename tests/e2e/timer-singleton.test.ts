/**
 * The metrics timer across hosts, as the real host runs timers, with two built local hosts against one Azurite:
 * - one host id, two hosts: the timer listener is a singleton (TimerListener.cs is
 *   `[Singleton(Mode = SingletonMode.Listener)]`, azure-webjobs-sdk-extensions src/WebJobs.Extensions/Extensions/
 *   Timers/Listener/), so only the host holding the blob lease `locks/{hostId}/Host.Functions.collectMetrics.Listener`
 *   runs it (azure-webjobs-sdk SingletonListener.cs, BlobLeaseDistributedLockManager.cs). Killed with SIGKILL, the
 *   holder releases nothing: its lease runs out after at most ListenerLockPeriod (15 s in Development), and the other
 *   host takes it at its next try, every ListenerLockRecoveryPollingInterval (host.json singleton section, here set by
 *   an AzureFunctionsJobHost__ override to its minimum of 15 s, SingletonOptions.cs).
 * - a restart after a missed occurrence runs the function at once, past due (TimerListener.StartAsync with
 *   StorageScheduleMonitor.cs: the status blob `timers/{hostId}/Host.Functions.collectMetrics/status`).
 */
import { randomBytes } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import { startAzurite, type RunningAzurite } from '../../scripts/azurite';
import { snapshotsSince } from '../../shared/metrics/snapshot-store';
import { Storage } from '../../shared/storage/clients';
import { resourceNames } from '../../shared/storage/names';
import { HOST_MAIN, spawnApp, waitFor, type HostProcess } from '../helpers/host';
import { uniqueNamespace } from '../helpers/storage';

jest.setTimeout(180_000);

let azurite: RunningAzurite;
const hosts: HostProcess[] = [];
beforeAll(async () => {
  azurite = await startAzurite();
}, 60_000);
afterAll(async () => {
  for (const h of hosts) if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill('SIGKILL');
  await Promise.all(hosts.map((h) => h.exited));
  await azurite?.stop();
});

const LEASE_MS = 15_000; // ListenerLockPeriod in Development (func start), the local host's default
const RECOVERY_MS = 15_000; // the smallest ListenerLockRecoveryPollingInterval SingletonOptions accepts
const SCHEDULE_MS = 2_000;
/**
 * How long both hosts run side by side: a holder that stopped renewing (after its first renewal, at half a lease
 * period) would lose the lease at most LEASE_MS later, and the other host would take it at its next recovery poll
 * (at most RECOVERY_MS later) and run the timer within SCHEDULE_MS; 10 s covers that with room to spare. The window
 * spans five renewals and two recovery polls of the other host.
 */
const OBSERVE_MS = LEASE_MS + RECOVERY_MS + 10_000;

/** Invocations of collectMetrics a host has logged (the function logs one line per snapshot). */
const runs = (h: HostProcess): number =>
  h.output().match(/\[collectMetrics\] information: metrics snapshot/g)?.length ?? 0;

async function startHost(env: NodeJS.ProcessEnv): Promise<HostProcess> {
  const host = await spawnApp(HOST_MAIN, env, /Host listening on/);
  hosts.push(host);
  return host;
}

it('two hosts with one host id for 40 s: one writes every snapshot; kill -9 it and the other takes over', async () => {
  const namespace = uniqueNamespace();
  const storage = new Storage(azurite.connectionString, resourceNames(namespace));
  const env: NodeJS.ProcessEnv = {
    AzureWebJobsStorage: azurite.connectionString,
    STORAGE_NAMESPACE: namespace,
    AzureFunctionsWebHost__hostid: `t${randomBytes(6).toString('hex')}`,
    AzureFunctionsJobHost__functions__0: 'collectMetrics',
    AzureFunctionsJobHost__singleton__listenerLockRecoveryPollingInterval: '00:00:15',
    METRICS_SCHEDULE: '00:00:02',
  };
  const [a, b] = await Promise.all([startHost(env), startHost(env)]);

  // OBSERVE_MS of observation; fails at once if both hosts ever ran the timer
  const started = Date.now();
  while (Date.now() - started < OBSERVE_MS) {
    if (runs(a) > 0 && runs(b) > 0) throw new Error(`both hosts ran collectMetrics:\n${a.output()}\n${b.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
  const [holder, other] = runs(a) > 0 ? [a, b] : [b, a];
  expect(runs(other)).toBe(0);
  expect(runs(holder)).toBeGreaterThanOrEqual(OBSERVE_MS / SCHEDULE_MS / 2);
  expect(other.output()).toMatch(/held by another host; trying again in 15000 ms/);
  // every snapshot in the table was written by the holder: as many rows as its invocations (give or take the one
  // being written, or logged, while we count), each about SCHEDULE_MS after the one before, never interleaved
  const before = runs(holder);
  const snapshots = await snapshotsSince(storage, 5);
  expect(Math.abs(snapshots.length - before)).toBeLessThanOrEqual(1);
  const times = snapshots.map((s) => Date.parse(s.timestamp)).sort((x, y) => x - y);
  const gaps = times.slice(1).map((t, i) => t - times[i]);
  expect(Math.min(...gaps)).toBeGreaterThan(SCHEDULE_MS * 0.75);

  holder.child.kill('SIGKILL');
  await holder.exited;
  const killedAt = Date.now();
  await waitFor('the other host to run collectMetrics', async () => (runs(other) > 0 ? true : undefined), 60_000, 100);
  const takeover = Date.now() - killedAt;
  // the lease runs out at most LEASE_MS after the holder's last renewal, then the next recovery poll takes it
  expect(takeover).toBeLessThan(LEASE_MS + RECOVERY_MS + SCHEDULE_MS + 3_000);
  expect(other.output()).toMatch(/acquired; starting the timer/);
  const after = await snapshotsSince(storage, 5);
  expect(after.length).toBeGreaterThan(snapshots.length);
});

it.concurrent(
  'a host that starts after a missed occurrence runs the timer at once, past due, and records the new status',
  async () => {
    const namespace = uniqueNamespace();
    const hostId = `t${randomBytes(6).toString('hex')}`;
    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
      'azure-webjobs-hosts',
    );
    await container.createIfNotExists();
    // what a host that last ran at 09:00 yesterday left behind (StorageScheduleMonitor writes ScheduleStatus so)
    const yesterday = new Date(Date.now() - 86_400_000);
    yesterday.setMinutes(0, 0, 0);
    const status = container.getBlockBlobClient(`timers/${hostId}/Host.Functions.collectMetrics/status`);
    const next = new Date(yesterday.getTime() + 3_600_000);
    const stored = JSON.stringify({
      Last: yesterday.toISOString(),
      Next: next.toISOString(),
      LastUpdated: yesterday.toISOString(),
    });
    await status.upload(stored, stored.length);

    const startedAt = Date.now();
    const host = await startHost({
      AzureWebJobsStorage: azurite.connectionString,
      STORAGE_NAMESPACE: namespace,
      AzureFunctionsWebHost__hostid: hostId,
      AzureFunctionsJobHost__functions__0: 'collectMetrics',
      METRICS_SCHEDULE: '0 0 * * * *', // hourly: the schedule monitor is on
    });
    await waitFor('the past-due run', async () => (runs(host) > 0 ? true : undefined), 30_000, 100);
    expect(host.output()).toContain(`past due: the ${next.toISOString()} occurrence was missed; running now`);
    const recorded = JSON.parse((await status.downloadToBuffer()).toString()) as Record<string, string>;
    expect(Date.parse(recorded.Last)).toBeGreaterThanOrEqual(startedAt - 1_000);
    const nextHour = new Date(Date.parse(recorded.Last));
    nextHour.setMinutes(60, 0, 0);
    expect(recorded.Next).toBe(nextHour.toISOString());
    host.child.kill('SIGTERM');
    await host.exited;
  },
);
