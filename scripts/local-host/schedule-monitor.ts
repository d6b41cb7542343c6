/**
 * The timer's schedule monitor, as the real host keeps it: StorageScheduleMonitor (azure-webjobs-sdk-extensions
 * src/WebJobs.Extensions.Timers.Storage/StorageScheduleMonitor.cs) stores each timer's ScheduleStatus as JSON
 * in the blob `timers/{hostId}/{timerName}/status` of the `azure-webjobs-hosts` container, where timerName is
 * the declaring type and method: `Host.Functions.{name}` for a script host's function. A host that starts
 * after a missed occurrence runs the function at once with isPastDue (see checkPastDue in timer-trigger.ts).
 */
import type { ContainerClient } from '@azure/storage-blob';
import { parseTimerSchedule, NEVER, type ScheduleMonitor, type ScheduleStatus } from './timer-trigger';

/**
 * Whether a timer uses the monitor: the function's `useMonitor` (default true: CoreExtensionsScriptBindingProvider
 * .cs in azure-functions-host), turned off for schedules that fire more than once a minute (TimerSchedule.Create and
 * ShouldDisableScheduleMonitor: a TimeSpan under a minute, or a 6-field NCRONTAB whose fields after the seconds
 * are all `*` with more than one occurrence in the next minute).
 */
export function shouldUseMonitor(expression: string, declared: boolean | undefined, now = new Date()): boolean {
  if (declared === false) return false;
  const schedule = parseTimerSchedule(expression);
  if (schedule.intervalMs !== undefined) return schedule.intervalMs >= 60_000;
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 6 || !fields.slice(1).every((f) => f === '*')) return true;
  const first = schedule.next(now);
  return schedule.next(first).getTime() >= now.getTime() + 60_000;
}

/** The status as Newtonsoft.Json writes ScheduleStatus (PascalCase); either case is read. */
function parseStatus(text: string): ScheduleStatus | null {
  const json = JSON.parse(text) as Record<string, unknown>;
  const pick = (name: string): string => {
    const value = json[name] ?? json[name[0].toLowerCase() + name.slice(1)];
    return typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? new Date(value).toISOString() : NEVER;
  };
  return { last: pick('Last'), next: pick('Next'), lastUpdated: pick('LastUpdated') };
}

export function blobScheduleMonitor(o: {
  container: ContainerClient;
  hostId: string;
  functionName: string;
  log?: (line: string) => void;
}): ScheduleMonitor {
  const blob = o.container.getBlockBlobClient(`timers/${o.hostId}/Host.Functions.${o.functionName}/status`);
  return {
    async getStatus() {
      try {
        return parseStatus((await blob.downloadToBuffer()).toString('utf8'));
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return null; // nothing recorded yet
        if (err instanceof SyntaxError) return null;
        throw err;
      }
    },
    async updateStatus(status) {
      const body = JSON.stringify({ Last: status.last, Next: status.next, LastUpdated: status.lastUpdated });
      try {
        await o.container.createIfNotExists();
        await blob.upload(body, Buffer.byteLength(body), { blobHTTPHeaders: { blobContentType: 'application/json' } });
      } catch (err) {
        // best effort, as UpdateStatusAsync
        o.log?.(`failed to update the timer trigger status: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
  };
}
