/**
 * Schedules run in the process's local time, and setting process.env.TZ inside a jest test file does not change
 * the zone V8 uses. So parsing tests build Dates from local fields and compare local fields (they hold in any TZ
 * away from DST changes), and the DST tests run the module in a child node with TZ set explicitly.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { shouldUseMonitor } from '../../../scripts/local-host/schedule-monitor';
import {
  checkPastDue,
  parseNcrontab,
  parseTimerSchedule,
  startTimerTrigger,
  type ScheduleMonitor,
  type ScheduleStatus,
  type TimerInfo,
} from '../../../scripts/local-host/timer-trigger';

const MODULE = path.join(__dirname, '../../../scripts/local-host/timer-trigger.ts');
const NEVER = '0001-01-01T00:00:00.000Z';
const NEVER_ISO = NEVER;

/** A local time; months are 1-based here to read like the schedules. */
const at = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0): Date =>
  new Date(y, mo - 1, d, h, mi, s, ms);
const pad = (n: number): string => String(n).padStart(2, '0');
const DOW = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
/** Local fields, e.g. `2024-01-08 Mon 09:30:00`. */
const local = (d: Date): string =>
  `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${DOW[d.getDay()]} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;

function nexts(expression: string, from: Date, count: number): string[] {
  const schedule = parseNcrontab(expression);
  const out: string[] = [];
  for (let t = from; out.length < count; out.push(local(t))) t = schedule.next(t);
  return out;
}

/** The next `count` occurrences as UTC ISO strings, computed by the module in a child node running in `tz`. */
let transpiled: string | undefined;
function nextsInZone(tz: string, expression: string, fromIso: string, count: number): string[] {
  const compilerOptions = { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 };
  const js = (transpiled ??= ts.transpileModule(readFileSync(MODULE, 'utf8'), { compilerOptions }).outputText);
  const script = `const module = { exports: {} }; new Function('exports', 'module', ${JSON.stringify(js)})(module.exports, module);
    const s = module.exports.parseNcrontab(${JSON.stringify(expression)}); const out = [];
    for (let t = new Date(${JSON.stringify(fromIso)}); out.length < ${count}; out.push(t.toISOString())) t = s.next(t);
    console.log(JSON.stringify(out));`;
  return JSON.parse(
    execFileSync(process.execPath, ['-e', script], { env: { ...process.env, TZ: tz }, encoding: 'utf8' }),
  ) as string[];
}

/** A schedule monitor kept in memory, with every status it was given. */
function memoryMonitor(stored: ScheduleStatus | null = null): ScheduleMonitor & { writes: ScheduleStatus[] } {
  const writes: ScheduleStatus[] = [];
  return {
    writes,
    getStatus: async () => (stored ? { ...stored } : null),
    updateStatus: async (status) => {
      stored = { ...status };
      writes.push(stored);
    },
  };
}

const errorOf = (expression: string): string => {
  try {
    parseNcrontab(expression);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`"${expression}" parsed`);
};

describe('parseNcrontab: next()', () => {
  it('every 10 seconds, strictly after, whole seconds', () => {
    expect(nexts('*/10 * * * * *', at(2024, 1, 1, 0, 0, 3), 3)).toEqual([
      '2024-01-01 Mon 00:00:10',
      '2024-01-01 Mon 00:00:20',
      '2024-01-01 Mon 00:00:30',
    ]);
    expect(local(parseNcrontab('*/10 * * * * *').next(at(2024, 1, 1, 0, 0, 10)))).toBe('2024-01-01 Mon 00:00:20');
    const next = parseNcrontab('*/10 * * * * *').next(at(2024, 1, 1, 0, 0, 9, 999));
    expect([local(next), next.getMilliseconds()]).toEqual(['2024-01-01 Mon 00:00:10', 0]);
    expect(nexts('* * * * * *', at(2024, 12, 31, 23, 59, 58, 400), 2)).toEqual([
      '2024-12-31 Tue 23:59:59',
      '2025-01-01 Wed 00:00:00',
    ]);
  });

  it('every 5 minutes, rolling over the hour', () => {
    expect(nexts('0 */5 * * * *', at(2024, 1, 1, 10, 52, 30), 3)).toEqual([
      '2024-01-01 Mon 10:55:00',
      '2024-01-01 Mon 11:00:00',
      '2024-01-01 Mon 11:05:00',
    ]);
  });

  it('09:30 on weekdays skips the weekend', () => {
    expect(nexts('0 30 9 * * 1-5', at(2024, 1, 5, 10), 3)).toEqual([
      '2024-01-08 Mon 09:30:00',
      '2024-01-09 Tue 09:30:00',
      '2024-01-10 Wed 09:30:00',
    ]);
    expect(nexts('0 30 9 * * 1-5', at(2024, 1, 8, 9, 29, 59), 1)).toEqual(['2024-01-08 Mon 09:30:00']);
  });

  it('once a year at new year', () => {
    expect(nexts('0 0 0 1 1 *', at(2024, 6, 15, 12), 2)).toEqual([
      '2025-01-01 Wed 00:00:00',
      '2026-01-01 Thu 00:00:00',
    ]);
    expect(nexts('0 0 0 1 1 *', at(2024, 12, 31, 23, 59, 59), 1)).toEqual(['2025-01-01 Wed 00:00:00']);
  });

  it('steps from a range and from a start value, lists and mixed lists', () => {
    expect(nexts('0 10-40/15 * * * *', at(2024, 1, 1, 10), 4)).toEqual([
      '2024-01-01 Mon 10:10:00',
      '2024-01-01 Mon 10:25:00',
      '2024-01-01 Mon 10:40:00',
      '2024-01-01 Mon 11:10:00',
    ]);
    expect(nexts('5/20 * * * * *', at(2024, 1, 1), 4)).toEqual([
      '2024-01-01 Mon 00:00:05',
      '2024-01-01 Mon 00:00:25',
      '2024-01-01 Mon 00:00:45',
      '2024-01-01 Mon 00:01:05',
    ]);
    expect(nexts('0 0 8,12,18 * * *', at(2024, 1, 1, 9), 3)).toEqual([
      '2024-01-01 Mon 12:00:00',
      '2024-01-01 Mon 18:00:00',
      '2024-01-02 Tue 08:00:00',
    ]);
    expect(nexts('0 0 22,1-2 * * *', at(2024, 1, 1, 12), 3)).toEqual([
      '2024-01-01 Mon 22:00:00',
      '2024-01-02 Tue 01:00:00',
      '2024-01-02 Tue 02:00:00',
    ]);
  });

  it('month and day names, any case, 3+ letter prefixes', () => {
    expect(nexts('0 0 12 * JAN,jul sat', at(2024, 1, 20), 3)).toEqual([
      '2024-01-20 Sat 12:00:00',
      '2024-01-27 Sat 12:00:00',
      '2024-07-06 Sat 12:00:00',
    ]);
    const weekdays = nexts('0 0 12 * * 1-5', at(2024, 1, 1), 10);
    expect(nexts('0 0 12 * * MON-FRI', at(2024, 1, 1), 10)).toEqual(weekdays);
    expect(nexts('0 0 12 * * monday-Friday', at(2024, 1, 1), 10)).toEqual(weekdays);
    expect(nexts('0 0 12 1 Sept *', at(2024, 1, 1), 1)).toEqual(['2024-09-01 Sun 12:00:00']);
  });

  it('day and day-of-week both restricted: both must match (NCrontab, as the Functions host)', () => {
    expect(nexts('0 0 0 13 * FRI', at(2024, 9, 1), 6)).toEqual([
      '2024-09-13 Fri 00:00:00',
      '2024-12-13 Fri 00:00:00',
      '2025-06-13 Fri 00:00:00',
      '2026-02-13 Fri 00:00:00',
      '2026-03-13 Fri 00:00:00',
      '2026-11-13 Fri 00:00:00',
    ]);
  });

  it('day or day-of-week as `*`: only the other one counts', () => {
    expect(nexts('0 0 0 13 * *', at(2024, 9, 1), 2)).toEqual(['2024-09-13 Fri 00:00:00', '2024-10-13 Sun 00:00:00']);
    expect(nexts('0 0 0 * * 5', at(2024, 9, 1), 2)).toEqual(['2024-09-06 Fri 00:00:00', '2024-09-13 Fri 00:00:00']);
  });

  it('Sunday is 0, 7 and SUN', () => {
    const sundays = nexts('0 0 0 * * 0', at(2024, 1, 1), 3);
    expect(sundays).toEqual(['2024-01-07 Sun 00:00:00', '2024-01-14 Sun 00:00:00', '2024-01-21 Sun 00:00:00']);
    expect(nexts('0 0 0 * * 7', at(2024, 1, 1), 3)).toEqual(sundays);
    expect(nexts('0 0 0 * * sun', at(2024, 1, 1), 3)).toEqual(sundays);
    expect(nexts('0 0 0 * * 5-7', at(2024, 1, 1), 3)).toEqual([
      '2024-01-05 Fri 00:00:00',
      '2024-01-06 Sat 00:00:00',
      '2024-01-07 Sun 00:00:00',
    ]);
  });

  it('month ends: the 31st only in months that have one', () => {
    expect(nexts('0 0 0 31 * *', at(2024, 1, 31, 1), 4)).toEqual([
      '2024-03-31 Sun 00:00:00',
      '2024-05-31 Fri 00:00:00',
      '2024-07-31 Wed 00:00:00',
      '2024-08-31 Sat 00:00:00',
    ]);
    expect(nexts('0 0 0 30,31 2,4 *', at(2024, 1, 1), 2)).toEqual([
      '2024-04-30 Tue 00:00:00',
      '2025-04-30 Wed 00:00:00',
    ]);
  });

  it('leap day across years', () => {
    expect(nexts('0 0 12 29 2 *', at(2023, 1, 1), 3)).toEqual([
      '2024-02-29 Thu 12:00:00',
      '2028-02-29 Tue 12:00:00',
      '2032-02-29 Sun 12:00:00',
    ]);
    expect(nexts('0 0 12 29 2 *', at(2024, 2, 29, 12), 1)).toEqual(['2028-02-29 Tue 12:00:00']);
  });

  it('gives up after 5 years: impossible dates, and 2100 (not a leap year)', () => {
    expect(() => parseNcrontab('0 0 0 30 2 *').next(at(2024, 1, 1))).toThrow(
      'NCRONTAB schedule "0 0 0 30 2 *" has no occurrence within 5 years after',
    );
    expect(() => parseNcrontab('0 0 0 31 4,6,9,11 *').next(at(2024, 1, 1))).toThrow(/no occurrence within 5 years/);
    expect(() => parseNcrontab('0 0 12 29 2 *').next(at(2096, 3, 1))).toThrow(/no occurrence within 5 years/);
  });

  it('advances field by field: far-off and impossible schedules stay fast', () => {
    const started = process.hrtime.bigint();
    for (let i = 0; i < 200; i++) parseNcrontab('59 59 23 31 12 *').next(at(2024, 1, 1));
    for (let i = 0; i < 200; i++) expect(() => parseNcrontab('0 0 0 30 2 *').next(at(2024, 1, 1))).toThrow();
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(2000);
  });

  it('matches() checks local fields in whole seconds', () => {
    const weekdays = parseNcrontab('0 30 9 * * 1-5');
    expect(weekdays.expression).toBe('0 30 9 * * 1-5');
    expect(weekdays.matches(at(2024, 1, 8, 9, 30))).toBe(true);
    expect(weekdays.matches(at(2024, 1, 8, 9, 30, 0, 700))).toBe(true);
    expect(weekdays.matches(at(2024, 1, 8, 9, 30, 1))).toBe(false);
    expect(weekdays.matches(at(2024, 1, 6, 9, 30))).toBe(false);
    expect(parseNcrontab('  0  */5 * * * *  ').matches(at(2024, 1, 1, 3, 15))).toBe(true);
  });
});

describe('parseNcrontab: DST (child node with TZ set)', () => {
  it('is nothing special in UTC', () => {
    expect(nextsInZone('UTC', '0 30 2 * * *', '2024-03-30T12:00:00Z', 2)).toEqual([
      '2024-03-31T02:30:00.000Z',
      '2024-04-01T02:30:00.000Z',
    ]);
    expect(nextsInZone('UTC', '0 30 2 * * *', '2024-10-26T12:00:00Z', 2)).toEqual([
      '2024-10-27T02:30:00.000Z',
      '2024-10-28T02:30:00.000Z',
    ]);
  });

  it('in Europe/Berlin a skipped local time never fires and a repeated one fires once', () => {
    expect(nextsInZone('Europe/Berlin', '0 30 2 * * *', '2024-03-30T12:00:00Z', 1)).toEqual([
      '2024-04-01T00:30:00.000Z',
    ]);
    expect(nextsInZone('Europe/Berlin', '0 30 2 * * *', '2024-10-26T12:00:00Z', 2)).toEqual([
      '2024-10-27T00:30:00.000Z',
      '2024-10-28T01:30:00.000Z',
    ]);
    expect(nextsInZone('Europe/Berlin', '0 0 * * * *', '2024-10-26T23:30:00Z', 3)).toEqual([
      '2024-10-27T00:00:00.000Z',
      '2024-10-27T02:00:00.000Z',
      '2024-10-27T03:00:00.000Z',
    ]);
  });
});

// Mirrors azure-webjobs-sdk-extensions src/WebJobs.Extensions/Extensions/Timers/Scheduling/CronSchedule.cs
// (TryCreate / HasSeconds: IncludingSeconds only when the expression does not have 5 fields) and TimerSchedule.cs
// (Create: NCRONTAB first, else TimeSpan.TryParse into a ConstantSchedule, else "not recognized").
describe('5-field NCRONTAB and TimeSpan schedules, as the real timer extension', () => {
  it('reads 5 fields without seconds: every 5 minutes at second 0', () => {
    expect(nexts('*/5 * * * *', at(2024, 1, 1, 0, 0, 30), 3)).toEqual([
      '2024-01-01 Mon 00:05:00',
      '2024-01-01 Mon 00:10:00',
      '2024-01-01 Mon 00:15:00',
    ]);
    expect(nexts('30 9 * * MON-FRI', at(2024, 1, 5, 10), 2)).toEqual([
      '2024-01-08 Mon 09:30:00',
      '2024-01-09 Tue 09:30:00',
    ]);
    expect(errorOf('*/5 * * 13 *')).toMatch(
      /the month field expected a number 1-12 or a name JAN-DEC but received 13$/,
    );
  });

  it('takes a TimeSpan as a constant interval from the previous run', () => {
    const from = at(2024, 1, 1, 0, 0, 0, 250);
    const every10s = parseTimerSchedule('00:00:10');
    expect(every10s.adjustForDST).toBe(false);
    expect(every10s.next(from).getTime() - from.getTime()).toBe(10_000);
    const cases: [string, number][] = [
      ['01:30', 90 * 60_000],
      ['1.02:03:04.5', ((26 * 60 + 3) * 60 + 4.5) * 1000],
      ['2', 2 * 86_400_000],
    ];
    for (const [text, ms] of cases) expect(parseTimerSchedule(text).next(from).getTime() - from.getTime()).toBe(ms);
    expect(parseTimerSchedule('0 */5 * * * *').adjustForDST).toBe(true);
  });

  it('refuses what is neither, saying what it expected', () => {
    for (const bad of ['every 10 seconds', '25:00:00', '00:61:00', '-00:00:10'])
      expect(() => parseTimerSchedule(bad)).toThrow(
        `The schedule expression "${bad}" was not recognized as a valid cron expression or timespan string: expected NCRONTAB with 6 fields`,
      );
    expect(() => parseTimerSchedule('00:00:00')).toThrow(/expected a TimeSpan longer than zero but received 0/);
  });
});

describe('parseNcrontab: invalid schedules', () => {
  it('rejects other field counts, naming both accepted forms', () => {
    expect(errorOf('0 0 0 * * * 2024')).toBe(
      'Invalid NCRONTAB schedule "0 0 0 * * * 2024": expected 6 fields ({second} {minute} {hour} {day} {month} {day-of-week}) or 5 (without {second}) but received 7',
    );
    expect(errorOf('0 0 *')).toMatch(/or 5 \(without \{second\}\) but received 3$/);
  });

  it('rejects an empty schedule', () => {
    expect(errorOf('')).toMatch(/^Invalid NCRONTAB schedule "": expected 6 fields .* but received 0$/);
    expect(errorOf('   ')).toMatch(/but received 0$/);
  });

  it('rejects values out of range, naming the field', () => {
    expect(errorOf('60 * * * * *')).toBe(
      'Invalid NCRONTAB schedule "60 * * * * *": the seconds field expected a number 0-59 but received 60',
    );
    expect(errorOf('0 0 24 * * *')).toMatch(/the hours field expected a number 0-23 but received 24$/);
    expect(errorOf('0 0 0 0 * *')).toMatch(/the day field expected a number 1-31 but received 0$/);
    expect(errorOf('0 0 0 * 13 *')).toMatch(
      /the month field expected a number 1-12 or a name JAN-DEC but received 13$/,
    );
    expect(errorOf('0 0 0 * * 8')).toMatch(
      /the day-of-week field expected a number 0-7 or a name SUN-SAT but received 8$/,
    );
    expect(errorOf('0 0 0 * * 5-1')).toMatch(
      /the day-of-week field expected a range whose start is not after its end but received 5-1$/,
    );
    expect(errorOf('0 -1 * * * *')).toMatch(/the minutes field expected a number 0-59 but received nothing$/);
    expect(errorOf('0 0 1,,2 * * *')).toMatch(/the hours field expected a number 0-23 but received nothing$/);
  });

  it('rejects bad steps', () => {
    expect(errorOf('*/0 * * * * *')).toBe(
      'Invalid NCRONTAB schedule "*/0 * * * * *": the seconds field expected a step of 1-59 but received 0',
    );
    expect(errorOf('0 */60 * * * *')).toMatch(/the minutes field expected a step of 1-59 but received 60$/);
    expect(errorOf('0 0 */x * * *')).toMatch(/the hours field expected a step of 1-23 but received x$/);
    expect(errorOf('0 0 0 */ * *')).toMatch(/the day field expected a step of 1-30 but received nothing$/);
    expect(errorOf('0 0 1/2/3 * * *')).toMatch(
      /the hours field expected at most one "\/" per item but received 1\/2\/3$/,
    );
  });

  it('rejects unknown names and names in numeric fields', () => {
    expect(errorOf('0 0 0 * FOO *')).toBe(
      'Invalid NCRONTAB schedule "0 0 0 * FOO *": the month field expected a number 1-12 or a name JAN-DEC but received FOO',
    );
    expect(errorOf('0 0 0 * * FUNDAY')).toMatch(
      /the day-of-week field expected a number 0-7 or a name SUN-SAT but received FUNDAY$/,
    );
    expect(errorOf('0 0 0 * * MO')).toMatch(/received MO$/);
    expect(errorOf('0 0 MON * * *')).toMatch(/the hours field expected a number 0-23 but received MON$/);
    expect(errorOf('0 0 0 L * *')).toMatch(/the day field expected a number 1-31 but received L$/);
  });
});

describe('startTimerTrigger (fake timers)', () => {
  const START = at(2024, 1, 1, 0, 0, 0, 500);
  let logs: string[];
  const log = (line: string): void => void logs.push(line);

  beforeEach(() => {
    logs = [];
    jest.useFakeTimers({ now: START });
  });
  afterEach(() => jest.useRealTimers());

  it('invokes at each occurrence with the host-style schedule status', async () => {
    const calls: TimerInfo[] = [];
    const trigger = startTimerTrigger({
      schedule: '*/10 * * * * *',
      monitor: memoryMonitor(),
      log,
      invoke: async (t) => void calls.push(t),
    });
    expect(local(trigger.nextRun())).toBe('2024-01-01 Mon 00:00:10');
    await jest.advanceTimersByTimeAsync(9_499);
    expect(calls).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(10_001);
    expect(calls).toEqual([
      {
        schedule: { adjustForDST: true },
        scheduleStatus: { last: NEVER, next: at(2024, 1, 1, 0, 0, 10).toISOString(), lastUpdated: NEVER },
        isPastDue: false,
      },
      {
        schedule: { adjustForDST: true },
        scheduleStatus: {
          last: at(2024, 1, 1, 0, 0, 10).toISOString(),
          next: at(2024, 1, 1, 0, 0, 20).toISOString(),
          lastUpdated: at(2024, 1, 1, 0, 0, 10).toISOString(),
        },
        isPastDue: false,
      },
    ]);
    expect(local(trigger.nextRun())).toBe('2024-01-01 Mon 00:00:30');
    await trigger.stop();
    expect(jest.getTimerCount()).toBe(0);
  });

  it('runs once at startup when runOnStartup', async () => {
    const calls: TimerInfo[] = [];
    const trigger = startTimerTrigger({
      schedule: '0 0 * * * *',
      runOnStartup: true,
      monitor: memoryMonitor(),
      log,
      invoke: async (t) => void calls.push(t),
    });
    await jest.advanceTimersByTimeAsync(0);
    expect(calls).toEqual([
      {
        schedule: { adjustForDST: true },
        scheduleStatus: { last: NEVER, next: at(2024, 1, 1, 1).toISOString(), lastUpdated: NEVER },
        isPastDue: false,
      },
    ]);
    await trigger.stop();
  });

  // TimerListener.cs (azure-webjobs-sdk-extensions .../Timers/Listener/): HandleTimerEvent calls
  // InvokeJobFunction(DateTime.Now, isPastDue: false) for every scheduled run; only a start-up check of the
  // schedule monitor's stored status passes isPastDue: true.
  it('never marks a scheduled invocation past due, however late it fires (as TimerListener)', async () => {
    let lag = 0;
    const calls: TimerInfo[] = [];
    const trigger = startTimerTrigger({
      schedule: '* * * * * *',
      now: () => new Date(Date.now() + lag),
      invoke: async (t) => void calls.push(t),
    });
    await jest.advanceTimersByTimeAsync(500);
    lag = 3_000; // the clock jumps (a busy event loop, a laptop waking up): the next timer fires 3 s late
    await jest.advanceTimersByTimeAsync(1_000);
    expect(calls.map((c) => c.isPastDue)).toEqual([false, false]);
    await trigger.stop();
  });

  it('logs a rejected or throwing invocation and keeps the schedule', async () => {
    let n = 0;
    const invoke = (): Promise<void> => {
      n++;
      if (n === 1) return Promise.reject(new Error('boom'));
      if (n === 2) throw new Error('sync boom');
      return Promise.resolve();
    };
    const trigger = startTimerTrigger({ schedule: '* * * * * *', log, invoke });
    await jest.advanceTimersByTimeAsync(3_000);
    expect(n).toBe(3);
    expect(logs.filter((l) => l.includes('invocation failed'))).toEqual([
      expect.stringContaining('Error: boom'),
      expect.stringContaining('Error: sync boom'),
    ]);
    await trigger.stop();
  });

  // TimerListener.cs: the timer has AutoReset = false and is re-armed in HandleTimerEvent's finally, after the
  // invocation; InvokeJobFunction sets Next = GetNextOccurrence(invocation start), so an overrun leaves Next in
  // the past and GetNextTimerInterval turns the negative interval into one tick: one catch-up run at once.
  it('an overrun runs again at once, then follows the schedule; never overlaps (as TimerListener)', async () => {
    const started: { next: string; at: number; isPastDue: boolean }[] = [];
    let first = true;
    const invoke = (t: TimerInfo): Promise<void> => {
      started.push({ next: t.scheduleStatus!.next, at: Date.now(), isPastDue: t.isPastDue });
      const ms = first ? 2_500 : 100;
      first = false;
      return new Promise((resolve) => setTimeout(resolve, ms));
    };
    const trigger = startTimerTrigger({ schedule: '* * * * * *', monitor: memoryMonitor(), log, invoke });
    await jest.advanceTimersByTimeAsync(4_000); // fires 00:00:01, busy until 00:00:03.5, again at once, then 00:00:04
    expect(started).toEqual([
      { next: at(2024, 1, 1, 0, 0, 1).toISOString(), at: at(2024, 1, 1, 0, 0, 1).getTime(), isPastDue: false },
      // the status handed in is the one recorded: Next = the occurrence after the overrunning run's start
      // (1 ms later: setTimeout's minimum delay, where the host's timer waits one tick)
      { next: at(2024, 1, 1, 0, 0, 2).toISOString(), at: at(2024, 1, 1, 0, 0, 3, 501).getTime(), isPastDue: false },
      { next: at(2024, 1, 1, 0, 0, 4).toISOString(), at: at(2024, 1, 1, 0, 0, 4).getTime(), isPastDue: false },
    ]);
    expect(logs.filter((l) => l.includes('overran'))).toEqual([
      `[timer "* * * * * *"] the run overran the ${at(2024, 1, 1, 0, 0, 2).toISOString()} occurrence: running again now`,
    ]);
    const stopped = trigger.stop();
    await jest.advanceTimersByTimeAsync(100);
    await stopped;
    expect(jest.getTimerCount()).toBe(0);
  });

  it('a TimeSpan schedule counts from the start of the previous run', async () => {
    const starts: number[] = [];
    const invoke = (): Promise<void> => {
      starts.push(Date.now());
      return new Promise((resolve) => setTimeout(resolve, 3_000));
    };
    const trigger = startTimerTrigger({ schedule: '00:00:10', invoke });
    await jest.advanceTimersByTimeAsync(30_000);
    expect(starts.map((t) => t - START.getTime())).toEqual([10_000, 20_000, 30_000]);
    const stopped = trigger.stop();
    await jest.advanceTimersByTimeAsync(3_000);
    await stopped;
    expect(jest.getTimerCount()).toBe(0);
  });

  it('stop() waits for the running invocation, then leaves no timers', async () => {
    let finished = false;
    const invoke = (): Promise<void> =>
      new Promise((resolve) =>
        setTimeout(() => {
          finished = true;
          resolve();
        }, 5_000),
      );
    const trigger = startTimerTrigger({ schedule: '* * * * * *', invoke });
    await jest.advanceTimersByTimeAsync(500);
    let stopped = false;
    const stopping = trigger.stop().then(() => (stopped = true));
    await jest.advanceTimersByTimeAsync(4_999);
    expect(stopped).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    await stopping;
    expect([finished, stopped, jest.getTimerCount()]).toEqual([true, true, 0]);
  });

  it('stop() gives up after graceMs on a hung invocation', async () => {
    const trigger = startTimerTrigger({
      schedule: '* * * * * *',
      log,
      invoke: () => new Promise<void>(() => undefined),
    });
    await jest.advanceTimersByTimeAsync(500);
    let stopped = false;
    const stopping = trigger.stop(1_000).then(() => (stopped = true));
    await jest.advanceTimersByTimeAsync(999);
    expect(stopped).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    await stopping;
    expect(logs).toContain('[timer "* * * * * *"] stopped while an invocation was still running after 1000 ms');
    expect(jest.getTimerCount()).toBe(0);
  });

  it('waits for far-away times in setTimeout chunks of at most 2^31-1 ms', async () => {
    const delays: number[] = [];
    const real = setTimeout;
    const spy = jest.spyOn(global, 'setTimeout').mockImplementation((fn: () => void, ms?: number) => {
      delays.push(ms ?? 0);
      return real(fn, ms);
    });
    const calls: TimerInfo[] = [];
    const trigger = startTimerTrigger({
      schedule: '0 0 0 1 1 *',
      monitor: memoryMonitor(),
      invoke: async (t) => void calls.push(t),
    });
    const wait = at(2025, 1, 1).getTime() - START.getTime();
    await jest.advanceTimersByTimeAsync(wait - 1);
    expect(calls).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => c.scheduleStatus?.next)).toEqual([at(2025, 1, 1).toISOString()]);
    expect(delays.length).toBeGreaterThan(wait / (2 ** 31 - 1));
    expect(Math.max(...delays)).toBeLessThanOrEqual(2 ** 31 - 1);
    await trigger.stop();
    spy.mockRestore();
    expect(jest.getTimerCount()).toBe(0);
  });

  it('throws on an invalid schedule without arming a timer', () => {
    expect(() => startTimerTrigger({ schedule: '*/5 * * *', invoke: async () => undefined })).toThrow(
      /not recognized as a valid cron expression or timespan string/,
    );
    expect(() => startTimerTrigger({ schedule: '0 0 0 30 2 *', invoke: async () => undefined })).toThrow(
      /no occurrence within 5 years/,
    );
    expect(jest.getTimerCount()).toBe(0);
  });
});

// The schedule monitor, as azure-webjobs-sdk-extensions keeps it: TimerListener.StartAsync
// (src/WebJobs.Extensions/Extensions/Timers/Listener/TimerListener.cs) asks ScheduleMonitor.CheckPastDueAsync
// (.../Timers/Scheduling/ScheduleMonitor.cs) whether an occurrence was missed while no host ran, and if so
// invokes at once with IsPastDue; InvokeJobFunction passes the status only when the timer has a monitor and
// stores the new one after each run; TimerSchedule.Create (.../Scheduling/TimerSchedule.cs) turns the monitor
// off for schedules more frequent than a minute.
describe('schedule monitor and isPastDue at start-up (as TimerListener / ScheduleMonitor)', () => {
  const START = at(2024, 1, 1, 0, 0, 30);
  const iso = (d: Date): string => d.toISOString();
  beforeEach(() => jest.useFakeTimers({ now: START }));
  afterEach(() => jest.useRealTimers());

  it('without a monitor the function gets scheduleStatus null (InvokeJobFunction passes it only with one)', async () => {
    const calls: TimerInfo[] = [];
    const trigger = startTimerTrigger({ schedule: '*/10 * * * * *', invoke: async (t) => void calls.push(t) });
    await jest.advanceTimersByTimeAsync(10_000);
    expect(calls).toEqual([{ schedule: { adjustForDST: true }, scheduleStatus: null, isPastDue: false }]);
    await trigger.stop();
  });

  it('a first start records the next occurrence and is not past due', async () => {
    const monitor = memoryMonitor();
    const checked = await checkPastDue(monitor, parseTimerSchedule('0 */5 * * * *'), START);
    expect(checked).toEqual({ status: null, pastDue: false });
    expect(monitor.writes).toEqual([{ last: NEVER_ISO, next: iso(at(2024, 1, 1, 0, 5)), lastUpdated: iso(START) }]);
  });

  it('a host that starts after a missed occurrence runs at once with isPastDue, then stores the new status', async () => {
    const stored = { last: iso(at(2023, 12, 31, 23, 50)), next: iso(at(2023, 12, 31, 23, 55)), lastUpdated: '' };
    stored.lastUpdated = stored.last;
    const monitor = memoryMonitor(stored);
    const calls: TimerInfo[] = [];
    const trigger = startTimerTrigger({
      schedule: '0 */5 * * * *',
      monitor,
      invoke: async (t) => void calls.push(t),
    });
    await jest.advanceTimersByTimeAsync(0);
    expect(calls).toEqual([{ schedule: { adjustForDST: true }, scheduleStatus: stored, isPastDue: true }]);
    // the next run counts from the past-due run's start, not from the missed occurrence
    expect(monitor.writes).toEqual([{ last: iso(START), next: iso(at(2024, 1, 1, 0, 5)), lastUpdated: iso(START) }]);
    await jest.advanceTimersByTimeAsync(270_000);
    expect(calls.map((c) => c.isPastDue)).toEqual([true, false]);
    await trigger.stop();
  });

  it('a restart before the stored next occurrence waits for it and is not past due', async () => {
    const stored = { last: iso(at(2023, 12, 31, 23, 55)), next: iso(at(2024, 1, 1)), lastUpdated: '' };
    stored.lastUpdated = stored.last;
    const early = at(2023, 12, 31, 23, 57);
    jest.setSystemTime(early);
    const calls: TimerInfo[] = [];
    const trigger = startTimerTrigger({
      schedule: '0 */5 * * * *',
      monitor: memoryMonitor(stored),
      invoke: async (t) => void calls.push(t),
    });
    await jest.advanceTimersByTimeAsync(at(2024, 1, 1).getTime() - early.getTime() - 1);
    expect(calls).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => [c.isPastDue, c.scheduleStatus?.next])).toEqual([[false, iso(at(2024, 1, 1))]]);
    await trigger.stop();
  });

  it('a changed schedule is never past due: its Next is recomputed from now and stored', async () => {
    // stored by an hourly schedule whose 00:00 run was missed; the schedule is now every 5 minutes
    const stored = { last: iso(at(2023, 12, 31, 23)), next: iso(at(2024, 1, 1)), lastUpdated: '' };
    stored.lastUpdated = stored.last;
    const monitor = memoryMonitor(stored);
    const checked = await checkPastDue(monitor, parseTimerSchedule('0 */5 * * * *'), START);
    const fixed = { last: NEVER_ISO, next: iso(at(2024, 1, 1, 0, 5)), lastUpdated: iso(START) };
    expect(checked).toEqual({ status: fixed, pastDue: false });
    expect(monitor.writes).toEqual([fixed]);
  });

  it('the monitor is on by default and off for schedules more frequent than a minute (TimerSchedule.Create)', () => {
    expect(shouldUseMonitor('0 */5 * * * *', undefined)).toBe(true);
    expect(shouldUseMonitor('0 * * * * *', undefined)).toBe(true); // once a minute
    expect(shouldUseMonitor('*/5 * * * *', undefined)).toBe(true); // 5 fields: at most once a minute
    expect(shouldUseMonitor('00:05:00', undefined)).toBe(true);
    expect(shouldUseMonitor('00:01:00', undefined)).toBe(true);
    expect(shouldUseMonitor('*/10 * * * * *', undefined)).toBe(false);
    // two occurrences strictly inside the next minute (NCrontab GetNextOccurrences excludes its end)
    expect(shouldUseMonitor('0,30 * * * * *', undefined, at(2024, 1, 1, 0, 0, 31))).toBe(false);
    expect(shouldUseMonitor('0,30 * * * * *', undefined, at(2024, 1, 1, 0, 0, 30))).toBe(true);
    expect(shouldUseMonitor('00:00:10', undefined)).toBe(false);
    expect(shouldUseMonitor('0 */5 * * * *', false)).toBe(false); // useMonitor: false on the function
  });
});

describe('startTimerTrigger (real clock)', () => {
  it('fires every second on time and stops cleanly', async () => {
    const timeouts = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timeouts();
    const calls: { timer: TimerInfo; at: number }[] = [];
    const trigger = startTimerTrigger({
      schedule: '* * * * * *',
      monitor: memoryMonitor(),
      invoke: async (timer) => void calls.push({ timer, at: Date.now() }),
    });
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    await trigger.stop();
    expect(calls.length).toBeGreaterThanOrEqual(2);
    for (const { timer, at: calledAt } of calls) {
      const due = Date.parse(timer.scheduleStatus!.next);
      expect(due % 1000).toBe(0);
      expect(calledAt - due).toBeGreaterThanOrEqual(-50);
      expect(calledAt - due).toBeLessThan(1000);
      expect(timer.isPastDue).toBe(false);
    }
    expect(timeouts()).toBeLessThanOrEqual(before);
  });
});
