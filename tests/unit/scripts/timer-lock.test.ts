/**
 * The timer singleton lock against a real Azurite. Mirrors azure-webjobs-sdk
 * src/Microsoft.Azure.WebJobs.Host/Singleton/SingletonListener.cs (a listener starts only under the lease and
 * rechecks every ListenerLockRecoveryPollingInterval), SingletonManager.cs (FormatLockId, renewal at half the
 * period), src/Microsoft.Azure.WebJobs.Host.Storage/Singleton/BlobLeaseDistributedLockManager.cs (blob
 * `locks/{lockId}` in azure-webjobs-hosts), and TimerListener.cs's [Singleton(Mode = SingletonMode.Listener)]
 * in azure-webjobs-sdk-extensions.
 */
import { randomBytes } from 'node:crypto';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { startAzurite, type RunningAzurite } from '../../../scripts/azurite';
import {
  HOSTS_CONTAINER,
  hostIdOf,
  startTimerLock,
  type RunningTimerLock,
} from '../../../scripts/local-host/timer-lock';
import { startTimerTrigger } from '../../../scripts/local-host/timer-trigger';
import { waitFor } from '../../helpers/host';

const until = (what: string, cond: () => boolean, ms: number): Promise<true> =>
  waitFor(what, async () => (cond() ? true : undefined), ms, 50);

jest.setTimeout(60_000);

let azurite: RunningAzurite | undefined;
let container: ContainerClient;
beforeAll(async () => {
  azurite = await startAzurite();
  container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(HOSTS_CONTAINER);
}, 30_000);
afterAll(async () => {
  await azurite?.stop();
});

const LEASE_MS = 15_000; // the shortest blob lease, and the real ListenerLockPeriod in Development
const running: RunningTimerLock[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((l) => l.abandon()));
});

/** One "host": a timer firing every second under the lock, recording its name on each run. */
function host(name: string, hostId: string, fired: string[]): RunningTimerLock {
  const lock = startTimerLock({
    container,
    hostId,
    functionName: 'collectMetrics',
    leasePeriodMs: LEASE_MS,
    recoveryPollMs: 250,
    start: () => startTimerTrigger({ schedule: '* * * * * *', invoke: async () => void fired.push(name) }),
  });
  running.push(lock);
  return lock;
}

it('two hosts with one host id: one runs the timer; kill it and the other takes over within the lease period', async () => {
  const hostId = `h${randomBytes(4).toString('hex')}`;
  const fired: string[] = [];
  const [a, b] = [host('a', hostId, fired), host('b', hostId, fired)];
  await until('three runs', () => fired.length >= 3, 10_000);
  const first = fired[0];
  expect(new Set(fired)).toEqual(new Set([first]));
  expect([a.holding(), b.holding()].filter(Boolean)).toHaveLength(1);
  // the lease is on the real host's blob, under the host id
  const props = await container.getBlobClient(`locks/${hostId}/Host.Functions.collectMetrics.Listener`).getProperties();
  expect(props.leaseState).toBe('leased');

  const [dead, survivor] = first === 'a' ? [a, b] : [b, a];
  await dead.abandon(); // killed: nothing released
  const killedAt = Date.now();
  const before = fired.length;
  await until('the other host to run', () => fired.slice(before).includes(first === 'a' ? 'b' : 'a'), LEASE_MS + 5_000);
  expect(Date.now() - killedAt).toBeLessThan(LEASE_MS + 3_000);
  expect(survivor.holding()).toBe(true);
});

it('a host that stops releases the lease, so the other one takes over at its next poll', async () => {
  const hostId = `h${randomBytes(4).toString('hex')}`;
  const fired: string[] = [];
  const [a, b] = [host('a', hostId, fired), host('b', hostId, fired)];
  await until('a holder', () => a.holding() || b.holding(), 10_000);
  const [holder, other] = a.holding() ? [a, b] : [b, a];
  const stoppedAt = Date.now();
  await holder.stop();
  await until('the other to hold', () => other.holding(), 5_000);
  expect(Date.now() - stoppedAt).toBeLessThan(5_000);
});

it('hosts with different host ids each run their timer', async () => {
  const fired: string[] = [];
  host('a', `h${randomBytes(4).toString('hex')}`, fired);
  host('b', `h${randomBytes(4).toString('hex')}`, fired);
  await until('both to run', () => fired.includes('a') && fired.includes('b'), 10_000);
});

it('takes the host id from AzureFunctionsWebHost__hostid, else machine name and app root (ScriptHostIdProvider.cs)', () => {
  expect(hostIdOf('/app', { AzureFunctionsWebHost__hostid: 'my-app' })).toBe('my-app');
  const local = hostIdOf('/app', {});
  expect(local).toMatch(/^[a-z0-9]+-\d+$/);
  expect(local.length).toBeLessThanOrEqual(32);
  expect(hostIdOf('/app', {})).toBe(local);
  expect(hostIdOf('/other', {})).not.toBe(local);
});
