/**
 * The timer trigger's singleton lock, as the real host takes it: TimerListener is
 * `[Singleton(Mode = SingletonMode.Listener)]` (azure-webjobs-sdk-extensions
 * src/WebJobs.Extensions/Extensions/Timers/Listener/TimerListener.cs), so the WebJobs SDK wraps it in a
 * SingletonListener (azure-webjobs-sdk src/Microsoft.Azure.WebJobs.Host/Singleton/SingletonListener.cs):
 * - the lock is a blob lease on `locks/{hostId}/Host.Functions.{name}.Listener` in the `azure-webjobs-hosts`
 *   container of AzureWebJobsStorage (BlobLeaseDistributedLockManager.cs, SingletonManager.FormatLockId,
 *   ScriptHost's generated type `Host.Functions`);
 * - the lease lasts ListenerLockPeriod (host.json singleton.listenerLockPeriod; 60 s, 15 s when the host runs in
 *   Development: SingletonOptions.cs, WebJobsServiceCollectionExtensions.cs; see host-config.ts), renewed when
 *   half of it has passed (SingletonManager.CreateLeaseRenewalTimer);
 * - a host that does not get the lease does not start the timer and tries again every
 *   ListenerLockRecoveryPollingInterval (singleton.listenerLockRecoveryPollingInterval, 1 minute); one that
 *   stops, stops the timer first (waiting for a running invocation), then releases the lease. A host that dies
 *   keeps it until the lease expires.
 * So of all hosts with one host id against one storage account, one runs each timer.
 */
import { hostname } from 'node:os';
import type { ContainerClient } from '@azure/storage-blob';

export const HOSTS_CONTAINER = 'azure-webjobs-hosts';

export interface TimerLockOptions {
  container: ContainerClient;
  hostId: string;
  functionName: string;
  /** ListenerLockPeriod: 15-60 s (a blob lease's range). */
  leasePeriodMs?: number;
  /** ListenerLockRecoveryPollingInterval. */
  recoveryPollMs?: number;
  /** Starts the timer once the lease is held; resolves its stop (waiting for a running invocation). */
  start(): { stop(graceMs?: number): Promise<void> };
  log?: (line: string) => void;
}

export interface RunningTimerLock {
  /** Whether this host holds the lease and runs the timer. */
  holding(): boolean;
  /** Stops the timer (waiting up to graceMs), then releases the lease. */
  stop(graceMs?: number): Promise<void>;
  /** What a killed process leaves behind: timers stop, the lease is kept until it expires. For tests. */
  abandon(): Promise<void>;
}

/**
 * The host id as the real host picks it (ScriptHostIdProvider.cs): AzureFunctionsWebHost__hostid when set;
 * locally, the machine name (letters and digits) and a stable hash of the app's root, at most 32 characters,
 * lower case.
 */
export function hostIdOf(root: string, env: NodeJS.ProcessEnv = process.env): string {
  const configured = env.AzureFunctionsWebHost__hostid ?? env['AzureFunctionsWebHost:hostid'];
  if (configured) return configured;
  let hash = 0;
  for (const ch of root) hash = (Math.imul(hash, 31) + ch.charCodeAt(0)) | 0;
  const machine = hostname().replace(/[^a-zA-Z0-9]/g, '');
  return `${machine}-${Math.abs(hash)}`.slice(0, 32).toLowerCase();
}

const statusOf = (err: unknown): number | undefined => (err as { statusCode?: number }).statusCode;

export function startTimerLock(o: TimerLockOptions): RunningTimerLock {
  const leaseMs = o.leasePeriodMs ?? 60_000;
  const recoveryMs = o.recoveryPollMs ?? 60_000;
  const lockId = `${o.hostId}/Host.Functions.${o.functionName}.Listener`;
  const log = (line: string): void => o.log?.(`[singleton lock ${lockId}] ${line}`);
  const blob = o.container.getBlockBlobClient(`locks/${lockId}`);
  const lease = blob.getBlobLeaseClient();
  let timer: { stop(graceMs?: number): Promise<void> } | undefined;
  let handle: NodeJS.Timeout | undefined;
  let stopped = false;
  let attempt: Promise<void> = Promise.resolve();

  /** BlobLeaseDistributedLockManager.TryLockAsync: create the blob if missing; a held lease means "not now". */
  const tryAcquire = async (): Promise<boolean> => {
    for (let tries = 0; tries < 2; tries++) {
      try {
        await lease.acquireLease(Math.round(leaseMs / 1000));
        return true;
      } catch (err) {
        if (statusOf(err) === 409) return false;
        if (statusOf(err) !== 404) throw err;
        await o.container.createIfNotExists();
        await blob.upload('', 0, { conditions: { ifNoneMatch: '*' } }).catch((e: unknown) => {
          if (statusOf(e) !== 409 && statusOf(e) !== 412) throw e;
        });
      }
    }
    return false;
  };

  const schedule = (fn: () => Promise<void>, ms: number): void => {
    if (stopped) return;
    handle = setTimeout(() => {
      attempt = fn();
    }, ms);
  };

  const renew = async (): Promise<void> => {
    try {
      await lease.renewLease();
      schedule(renew, leaseMs / 2);
    } catch (err) {
      // the lease is gone (it expired and another host took it): stop the timer and wait for it again
      log(`lost the lease (${statusOf(err) ?? String(err)}); stopping the timer`);
      await timer?.stop();
      timer = undefined;
      schedule(acquire, recoveryMs);
    }
  };

  const acquire = async (): Promise<void> => {
    let got = false;
    try {
      got = await tryAcquire();
    } catch (err) {
      log(`could not take the lease: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (stopped) {
      if (got) await lease.releaseLease().catch(() => undefined);
      return;
    }
    if (!got) {
      log(`held by another host; trying again in ${recoveryMs} ms`);
      return schedule(acquire, recoveryMs);
    }
    log('acquired; starting the timer');
    try {
      timer = o.start();
    } catch (err) {
      log(`could not start the timer: ${err instanceof Error ? err.message : String(err)}`);
      await lease.releaseLease().catch(() => undefined);
      return;
    }
    schedule(renew, leaseMs / 2);
  };

  attempt = acquire();
  return {
    holding: () => timer !== undefined,
    async stop(graceMs) {
      stopped = true;
      clearTimeout(handle);
      await attempt;
      if (!timer) return;
      await timer.stop(graceMs);
      timer = undefined;
      await lease.releaseLease().catch((err: unknown) => log(`could not release the lease: ${String(err)}`));
    },
    async abandon() {
      stopped = true;
      clearTimeout(handle);
      await attempt;
      await timer?.stop(0);
      timer = undefined;
    },
  };
}
