/**
 * Timer triggers for the local host, as the timer extension (Azure/azure-webjobs-sdk-extensions,
 * src/WebJobs.Extensions/Extensions/Timers/) runs them: a schedule is NCRONTAB with 6 fields
 * (`{second} {minute} {hour} {day} {month} {day-of-week}`) or 5 (no seconds: second 0), else a .NET TimeSpan
 * (`hh:mm:ss`, a constant interval); and a setTimeout loop that invokes the function.
 * Schedules run in the local time of this Node process (its TZ). The real host uses UTC unless WEBSITE_TIME_ZONE
 * or TZ is set (which one depends on OS and plan), so run with TZ=UTC to match a default Azure deployment.
 */

/** A schedule: NCRONTAB (CronSchedule.cs) or a constant TimeSpan interval (ConstantSchedule.cs). */
export interface TimerSchedule {
  readonly expression: string;
  /** The interval of a constant (TimeSpan) schedule; undefined for NCRONTAB. */
  readonly intervalMs?: number;
  /** TimerInfo.schedule.adjustForDST: true for NCRONTAB, false for a constant interval. */
  readonly adjustForDST: boolean;
  next(after: Date): Date;
}

export interface CronSchedule extends TimerSchedule {
  /** The first matching instant strictly after `after`, in whole seconds. */
  next(after: Date): Date;
  matches(at: Date): boolean;
}

/** ScheduleStatus.cs: the last run, the next one expected and when that was computed (ISO strings). */
export interface ScheduleStatus {
  last: string;
  next: string;
  lastUpdated: string;
}

/**
 * What the Node.js worker hands a timer function (`Timer` in @azure/functions). scheduleStatus is null when the
 * timer runs without a schedule monitor: TimerListener.InvokeJobFunction passes the status only then.
 */
export interface TimerInfo {
  schedule: { adjustForDST: boolean };
  scheduleStatus: ScheduleStatus | null;
  isPastDue: boolean;
}

/** ScheduleMonitor.cs: where a timer's status survives the host (a blob in the real host's storage). */
export interface ScheduleMonitor {
  getStatus(): Promise<ScheduleStatus | null>;
  /** Best effort, as StorageScheduleMonitor.UpdateStatusAsync: a failure is logged, not thrown. */
  updateStatus(status: ScheduleStatus): Promise<void>;
}

export interface TimerTriggerOptions {
  schedule: string;
  runOnStartup?: boolean;
  /** The schedule monitor when the timer uses one (see shouldUseMonitor in schedule-monitor.ts). */
  monitor?: ScheduleMonitor;
  invoke(timer: TimerInfo): Promise<void>;
  log?: (line: string) => void;
  now?: () => Date;
}

export interface RunningTimerTrigger {
  stop(graceMs?: number): Promise<void>;
  nextRun(): Date;
}

/** `names` are full English names; any prefix of 3+ letters is accepted, as NCrontab does (JAN, Mon, Tues...). */
interface FieldSpec {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
}

/** Allowed values ascending, and whether written as a bare `*` (which decides the day / day-of-week rule). */
interface Field {
  readonly values: readonly number[];
}

const MONTHS = [
  'JANUARY',
  'FEBRUARY',
  'MARCH',
  'APRIL',
  'MAY',
  'JUNE',
  'JULY',
  'AUGUST',
  'SEPTEMBER',
  'OCTOBER',
  'NOVEMBER',
  'DECEMBER',
];
const DAYS = ['SUNDAY', 'MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY'];
// day-of-week accepts 7 for Sunday too, as most crons do (folded onto 0)
const SPECS: readonly FieldSpec[] = [
  { name: 'seconds', min: 0, max: 59 },
  { name: 'minutes', min: 0, max: 59 },
  { name: 'hours', min: 0, max: 23 },
  { name: 'day', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  { name: 'day-of-week', min: 0, max: 7, names: DAYS },
];
const SEARCH_YEARS = 5;
/** setTimeout overflows (and fires at once) above a signed 32-bit delay. */
const MAX_DELAY_MS = 2 ** 31 - 1;
/** The host reports .NET's DateTime.MinValue while no run has been recorded yet. */
export const NEVER = new Date(-62135596800000).toISOString();

type Fail = (expected: string, received: string) => never;

function parseValue(token: string, spec: FieldSpec, fail: Fail): number {
  const upper = token.toUpperCase();
  const named = upper.length >= 3 ? (spec.names ?? []).findIndex((n) => n.startsWith(upper)) : -1;
  if (named >= 0) return named + spec.min;
  const range = `${spec.min}-${spec.max}`;
  const expected = spec.names
    ? `a number ${range} or a name ${spec.names[0]?.slice(0, 3)}-${spec.names.at(-1)?.slice(0, 3)}`
    : `a number ${range}`;
  if (!/^\d+$/.test(token) || Number(token) < spec.min || Number(token) > spec.max) fail(expected, token);
  return Number(token);
}

/** One list item: `*`, `a`, `a-b`, each optionally `/step`; `a/step` runs from a to the field's maximum. */
function parsePart(part: string, spec: FieldSpec, fail: Fail): number[] {
  const [range = '', step, extra] = part.split('/');
  if (extra !== undefined) fail('at most one "/" per item', part);
  const maxStep = spec.max - spec.min;
  if (step !== undefined && (!/^\d+$/.test(step) || Number(step) < 1 || Number(step) > maxStep))
    fail(`a step of 1-${maxStep}`, step);
  let [low, high] = [spec.min, spec.max];
  if (range !== '*') {
    const [first = '', last, more] = range.split('-');
    if (more !== undefined) fail('a range like a-b', range);
    low = parseValue(first, spec, fail);
    high = last !== undefined ? parseValue(last, spec, fail) : step !== undefined ? spec.max : low;
    if (low > high) fail('a range whose start is not after its end', range);
  }
  const values: number[] = [];
  for (let v = low; v <= high; v += Number(step ?? 1)) values.push(spec.name === 'day-of-week' && v === 7 ? 0 : v);
  return values;
}

function parseField(text: string, spec: FieldSpec, fail: Fail): Field {
  const values = new Set(text.split(',').flatMap((part) => parsePart(part, spec, fail)));
  return { values: [...values].sort((a, b) => a - b) };
}

const has = (field: Field, value: number): boolean => field.values.includes(value);

/**
 * NCrontab's rule, which the Functions host uses: day and day-of-week must both match (so
 * `0 0 0 13 * FRI` is Friday the 13th), unlike classic cron's "either".
 */
function dayMatches(day: Field, dow: Field, at: Date): boolean {
  return has(day, at.getDate()) && has(dow, at.getDay());
}

/**
 * `at` if it matches, else a later instant no match lies before. Months and days jump to local midnight; below a
 * day we move in real time, at most to the next hour boundary, so no DST change (on an hour boundary) is jumped
 * over. Like the host's wall-clock schedule, a local time that DST repeats matches only its first instance, and
 * one that DST skips never matches.
 */
function advance(f: readonly Field[], at: Date): Date | undefined {
  const [second, minute, hour, day, month, dow] = f as [Field, Field, Field, Field, Field, Field];
  if (!has(month, at.getMonth() + 1)) return new Date(at.getFullYear(), at.getMonth() + 1, 1);
  if (!dayMatches(day, dow, at)) return new Date(at.getFullYear(), at.getMonth(), at.getDate() + 1);
  const [ms, m, s] = [at.getTime(), at.getMinutes(), at.getSeconds()];
  const nextHour = new Date(ms + ((60 - m) * 60 - s) * 1000);
  if (!has(hour, at.getHours())) return nextHour;
  const m2 = minute.values.find((v) => v >= m);
  if (m2 === undefined) return nextHour;
  if (m2 > m) return new Date(ms + ((m2 - m) * 60 - s) * 1000);
  const s2 = second.values.find((v) => v >= s);
  if (s2 === undefined) return new Date(ms + (60 - s) * 1000);
  if (s2 > s) return new Date(ms + (s2 - s) * 1000);
  // the Date constructor resolves a repeated local time to its first instance
  const first = new Date(at.getFullYear(), at.getMonth(), at.getDate(), at.getHours(), m, s).getTime() === ms;
  return first ? undefined : nextHour;
}

const CRON_FIELDS = '{second} {minute} {hour} {day} {month} {day-of-week}';

/**
 * NCRONTAB as CronSchedule.TryCreate parses it: 5 fields are read without seconds (IncludingSeconds is
 * `fields != 5`), so `*\/5 * * * *` runs every 5 minutes at second 0.
 */
export function parseNcrontab(expression: string): CronSchedule {
  const given = expression.trim().split(/\s+/).filter(Boolean);
  if (given.length !== 6 && given.length !== 5)
    throw new Error(
      `Invalid NCRONTAB schedule "${expression}": expected 6 fields (${CRON_FIELDS}) or 5 (without {second}) but received ${given.length}`,
    );
  const texts = given.length === 5 ? ['0', ...given] : given;
  const fields = texts.map((text, i) => {
    const spec = SPECS[i];
    const fail: Fail = (expected, received) => {
      throw new Error(
        `Invalid NCRONTAB schedule "${expression}": the ${spec.name} field expected ${expected} but received ${received === '' ? 'nothing' : received}`,
      );
    };
    return parseField(text, spec, fail);
  });
  return {
    expression,
    adjustForDST: true,
    matches: (at) => advance(fields, new Date(Math.floor(at.getTime() / 1000) * 1000)) === undefined,
    next(after) {
      const limit = new Date(after);
      limit.setFullYear(limit.getFullYear() + SEARCH_YEARS);
      for (let at = new Date(Math.floor(after.getTime() / 1000) * 1000 + 1000); at <= limit;) {
        const later = advance(fields, at);
        if (!later) return at;
        at = later;
      }
      throw new Error(
        `NCRONTAB schedule "${expression}" has no occurrence within ${SEARCH_YEARS} years after ${after.toISOString()}`,
      );
    },
  };
}

/**
 * A .NET TimeSpan as TimeSpan.TryParse reads the common forms: `d` (whole days), `[d.]hh:mm[:ss[.fffffff]]`, in
 * ms; undefined when it is not one. Hours 0-23, minutes and seconds 0-59, as .NET requires.
 */
export function parseTimeSpanMs(text: string): number | undefined {
  const t = text.trim();
  if (/^\d{1,8}$/.test(t)) return Number(t) * 86_400_000;
  const m = /^(?:(\d{1,8})\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$/.exec(t);
  if (!m) return undefined;
  const [d, h, mi, sec] = [m[1], m[2], m[3], m[4]].map((v) => Number(v ?? 0)) as [number, number, number, number];
  if (h > 23 || mi > 59 || sec > 59) return undefined;
  const fraction = Number(`0.${m[5] ?? '0'}`);
  return (((d * 24 + h) * 60 + mi) * 60 + sec + fraction) * 1000;
}

/**
 * The schedule of a timer trigger, as TimerSchedule.Create decides it: NCRONTAB first, else a TimeSpan (a
 * ConstantSchedule: the next run is the previous run's start plus the interval), else an error.
 */
export function parseTimerSchedule(expression: string): TimerSchedule {
  const fields = expression.trim().split(/\s+/).filter(Boolean).length;
  if (fields === 5 || fields === 6) return parseNcrontab(expression);
  const interval = parseTimeSpanMs(expression);
  if (interval === undefined)
    throw new Error(
      `The schedule expression "${expression}" was not recognized as a valid cron expression or timespan string: expected NCRONTAB with 6 fields (${CRON_FIELDS}) or 5 (without {second}), or a TimeSpan such as "00:05:00" or "1.00:00:00"`,
    );
  // the real host would re-run such a schedule without pause; refusing it is the only local-only rule here
  if (interval === 0)
    throw new Error(`The schedule expression "${expression}": expected a TimeSpan longer than zero but received 0`);
  return {
    expression,
    intervalMs: interval,
    adjustForDST: false,
    next: (after) => new Date(after.getTime() + interval),
  };
}

const ms = (iso: string): number => Date.parse(iso);
const NEVER_MS = ms(NEVER);

/**
 * ScheduleMonitor.CheckPastDueAsync (azure-webjobs-sdk-extensions src/WebJobs.Extensions/Extensions/Timers/
 * Scheduling/ScheduleMonitor.cs): whether an occurrence was missed while no host ran, from the stored status.
 * A timer with no status yet records one (its next occurrence from now); a stored Next that the schedule
 * would not have produced (the schedule changed) is recomputed, from now if it already passed, so a changed
 * schedule is never past due. Returns the status to run with (the stored one, corrected) or null if none was
 * stored.
 */
export async function checkPastDue(
  monitor: ScheduleMonitor,
  schedule: TimerSchedule,
  now: Date,
): Promise<{ status: ScheduleStatus | null; pastDue: boolean }> {
  let status = await monitor.getStatus();
  let recordedNext: number;
  if (!status) {
    const next = schedule.next(now);
    await monitor.updateStatus({ last: NEVER, next: next.toISOString(), lastUpdated: now.toISOString() });
    recordedNext = next.getTime();
  } else {
    let [expected, lastUpdated] =
      ms(status.last) !== NEVER_MS
        ? [schedule.next(new Date(status.last)), ms(status.last)]
        : ms(status.lastUpdated) !== NEVER_MS
          ? [schedule.next(new Date(status.lastUpdated)), ms(status.lastUpdated)]
          : [schedule.next(now), now.getTime()];
    if (ms(status.next) !== expected.getTime()) {
      if (now > expected) [expected, lastUpdated] = [schedule.next(now), now.getTime()];
      status = { last: NEVER, next: expected.toISOString(), lastUpdated: new Date(lastUpdated).toISOString() };
      await monitor.updateStatus(status);
    }
    recordedNext = ms(status.next);
  }
  return { status, pastDue: now.getTime() > recordedNext };
}

/**
 * Runs the schedule as TimerListener.cs does: one System.Timers.Timer without AutoReset, re-armed only when an
 * invocation has finished, so invocations never overlap. The next occurrence is computed from the time the
 * invocation started (or the occurrence it was due at, if the timer fired a hair early); when a run overruns
 * that occurrence, the interval is negative and the next invocation starts at once, and then the schedule
 * goes on from there: missed occurrences collapse into one. isPastDue is false for every scheduled invocation.
 * With a schedule monitor (StartAsync), the stored status decides the start: an occurrence missed while no host
 * ran is invoked at once with isPastDue true; else the first run is at the stored Next; after each run the
 * status is stored.
 */
export function startTimerTrigger(o: TimerTriggerOptions): RunningTimerTrigger {
  const schedule = parseTimerSchedule(o.schedule);
  const now = o.now ?? (() => new Date());
  const log = (line: string): void => o.log?.(`[timer "${o.schedule}"] ${line}`);
  // As the host does, the status passed in is the one recorded by the previous run.
  let status: ScheduleStatus = { last: NEVER, next: schedule.next(now()).toISOString(), lastUpdated: NEVER };
  let handle: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  const invoke = async (kind: 'scheduled' | 'startup' | 'pastDue'): Promise<void> => {
    const invokedAt = now();
    const timer: TimerInfo = {
      schedule: { adjustForDST: schedule.adjustForDST },
      scheduleStatus: o.monitor ? { ...status } : null,
      isPastDue: kind === 'pastDue',
    };
    if (kind === 'pastDue') log(`past due: the ${status.next} occurrence was missed; running now`);
    try {
      // a rejected (or throwing) invocation is logged and the schedule carries on, as in the host
      await o.invoke(timer);
    } catch (err) {
      log(`invocation failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
    // fired early (clock skew): count from the occurrence, so it is not run twice
    const nextAt = new Date(status.next);
    const adjusted = kind === 'scheduled' && nextAt > invokedAt ? nextAt : invokedAt;
    status = {
      last: adjusted.toISOString(),
      next: schedule.next(adjusted).toISOString(),
      lastUpdated: adjusted.toISOString(),
    };
    await o.monitor?.updateStatus(status);
  };

  const run = (kind: 'scheduled' | 'startup' | 'pastDue'): void => {
    running = invoke(kind).finally(() => {
      running = undefined;
      const late = now().getTime() - ms(status.next);
      if (late >= 0 && !stopped) log(`the run overran the ${status.next} occurrence: running again now`);
      arm();
    });
  };

  // Re-armed in chunks: delays above MAX_DELAY_MS would overflow, and each chunk re-reads the clock.
  const arm = (): void => {
    if (stopped) return;
    const wait = ms(status.next) - now().getTime();
    handle = setTimeout(wait > MAX_DELAY_MS ? arm : () => run('scheduled'), Math.max(0, Math.min(wait, MAX_DELAY_MS)));
  };

  const begin = (pastDue: boolean): void => {
    if (stopped) return;
    log(`next run at ${status.next}`);
    if (pastDue) run('pastDue');
    else if (o.runOnStartup) run('startup');
    else arm();
  };

  // the start-up check reads storage: until it is done, stop() waits for it
  let starting: Promise<void> | undefined;
  if (o.monitor) {
    starting = checkPastDue(o.monitor, schedule, now()).then(
      (checked) => {
        if (checked.status) status = checked.status;
        begin(checked.pastDue);
      },
      (err: unknown) => {
        log(`could not read the schedule status: ${err instanceof Error ? err.message : String(err)}`);
        begin(false);
      },
    );
  } else begin(false);

  return {
    nextRun: () => new Date(status.next),
    async stop(graceMs = 30_000) {
      stopped = true;
      await starting;
      clearTimeout(handle);
      if (!running) return;
      let grace: NodeJS.Timeout | undefined;
      const expired = new Promise<boolean>((resolve) => (grace = setTimeout(resolve, graceMs, true)));
      const timedOut = await Promise.race([running.then(() => false), expired]);
      clearTimeout(grace);
      if (timedOut) log(`stopped while an invocation was still running after ${graceMs} ms`);
    },
  };
}
