/**
 * The app's settings, in one place: every value it reads from the environment is in the SETTINGS
 * table (variable, default, allowed values, meaning and the reason for the default), plus the names
 * of the settings the Functions host owns. The app reads the table once (appSettings) when its
 * function files load, and a bad value stops start-up with every problem listed at once, never a
 * NaN or a 500 later. The README's configuration table is generated from it (`npm run docs`).
 */
import os from 'node:os';
import { CAPABILITIES } from './capabilities';
import { ConfigError, type FieldProblem } from './errors';
import { fieldProblem } from './validation';

/**
 * The environment a process running sharp should start with (glibc reads it at start-up, so it is set by whoever
 * starts the process: `npm start`, the bench, the container image, the Azure app settings). glibc's malloc gives
 * each thread an arena of its own, up to 8 per core, and libvips' worker threads leave them fragmented: measured
 * with `npm run bench -- e2e` (samples, 100 tasks), a worker's RSS was ~30 % lower with 2 arenas (light ~230 MB
 * against ~320 MB; 200 4K heavy tasks: ~300 MB flat against ~470 MB and still growing) at the same throughput.
 * sharp's own advice is a different allocator (jemalloc); this needs nothing installed.
 */
export const ALLOCATOR_ENV = Object.freeze({ MALLOC_ARENA_MAX: '2' });

/** The app setting (and connection name of every trigger) holding the storage connection string. */
export const STORAGE_CONNECTION = 'AzureWebJobsStorage';

/**
 * The Functions host's allow-list: the names in AzureFunctionsJobHost__functions__0..N, in index
 * order (blank entries skipped), or null when no such setting exists and every function runs.
 * Kubernetes uses it to run one role of the app per Deployment.
 */
export function functionAllowList(env: NodeJS.ProcessEnv = process.env): string[] | null {
  const entries = Object.entries(env)
    .map(([key, value]) => [/^AzureFunctionsJobHost__functions__(\d+)$/i.exec(key)?.[1], value] as const)
    .filter((e): e is readonly [string, string] => e[0] !== undefined && typeof e[1] === 'string' && e[1].trim() !== '')
    .sort((a, b) => Number(a[0]) - Number(b[0]))
    .map(([, value]) => value.trim());
  return entries.length ? entries : null;
}

interface SettingBase {
  readonly env: string;
  /** What the README's table shows as the default, when the value itself depends on the machine. */
  readonly shownDefault?: string;
  readonly meaning: string;
  readonly reason: string;
}

export interface IntegerSetting extends SettingBase {
  readonly kind: 'integer';
  readonly fallback: number;
  readonly min: number;
  readonly max: number;
}

export interface TextSetting extends SettingBase {
  readonly kind: 'text';
  readonly fallback: string;
  readonly pattern: RegExp;
  readonly expected: string;
  /** A key or a string that holds one: a refused value is described (its length), never echoed. */
  readonly secret?: boolean;
}

export type Setting = IntegerSetting | TextSetting;
type ValueOf<S extends Setting> = S extends IntegerSetting ? number : string;
export type SettingsOf<T extends Record<string, Setting>> = { readonly [K in keyof T]: ValueOf<T[K]> };

/**
 * A timer schedule in the shapes the Functions timer trigger accepts (TimerSchedule.Create and
 * CronSchedule.TryCreate in azure-webjobs-sdk-extensions): NCRONTAB with 6 fields (seconds first) or 5
 * (no seconds), else a TimeSpan (`[d.]hh:mm[:ss[.fffffff]]` or whole days), run as a constant interval.
 */
/** `light=1800,heavy=1500`: some capabilities, each with tasks per minute per worker (1 or more). */
const CAPABILITY_NAMES = CAPABILITIES.map((c) => c.name).join('|');
const RATE_ENTRY = `(?:${CAPABILITY_NAMES})=[1-9]\\d{0,6}(?:\\.\\d+)?`;
const CAPACITY_LIST = new RegExp(`^(|${RATE_ENTRY}(?:,${RATE_ENTRY})*)$`);

const TIMER_SCHEDULE = /^\s*(\S+(\s+\S+){4,5}|(\d{1,8}\.)?\d{1,2}:\d{1,2}(:\d{1,2}(\.\d{1,7})?)?|\d{1,8})\s*$/;

export const SETTINGS = {
  maxInputPixels: {
    kind: 'integer',
    env: 'MAX_INPUT_PIXELS',
    fallback: 100_000_000,
    min: 1,
    max: 0x3fff * 0x3fff * 4,
    meaning: 'largest input, width × height; larger images are refused from their header',
    reason: '100 MP covers phone and DSLR photos; a decompression bomb is refused before decoding',
  },
  maxOutputWidth: {
    kind: 'integer',
    env: 'MAX_OUTPUT_WIDTH',
    fallback: 16383,
    min: 1,
    max: 65535,
    meaning: "widest image any step may make, or the input's own width when larger (16383 is WebP's limit)",
    reason: '16383 is the largest side WebP can encode; JPEG stops at 65500',
  },
  maxOutputHeight: {
    kind: 'integer',
    env: 'MAX_OUTPUT_HEIGHT',
    fallback: 16383,
    min: 1,
    max: 65535,
    meaning: "tallest image any step may make, or the input's own height when larger",
    reason: '16383 is the largest side WebP can encode; JPEG stops at 65500',
  },
  maxOutputPixels: {
    kind: 'integer',
    env: 'MAX_OUTPUT_PIXELS',
    fallback: 100_000_000,
    min: 1,
    max: 0x3fff * 0x3fff * 4,
    meaning:
      'largest result and largest image any step of a pipeline may make, width × height; checked before any pixel work',
    reason:
      'as large as the largest input: upscaling a thumbnail to 16383×16383 (268 MP) costs ~1 GB and 10-25 s of a worker',
  },
  maxFiltersPerTask: {
    kind: 'integer',
    env: 'MAX_FILTERS_PER_TASK',
    fallback: 20,
    min: 1,
    max: 200,
    meaning: 'longest pipeline',
    reason: 'each filter may add a pipeline stage; 20 is far beyond any useful pipeline',
  },
  sharpConcurrency: {
    kind: 'integer',
    env: 'SHARP_CONCURRENCY',
    fallback: os.availableParallelism(),
    shownDefault: 'number of CPUs',
    min: 1,
    max: 256,
    meaning: 'libvips threads per image',
    reason: 'one thread per core halves 4K latency for neighbourhood filters (measured)',
  },
  maxBodyBytes: {
    kind: 'integer',
    env: 'MAX_BODY_BYTES',
    fallback: 50 * 1024 * 1024,
    min: 1,
    max: 1024 * 1024 * 1024,
    meaning: 'largest request body (413 above it)',
    reason: 'a 100 MP photo fits in 50 MiB as JPEG; a body is held in memory while it is checked',
  },
  maxImagesPerJob: {
    kind: 'integer',
    env: 'MAX_IMAGES_PER_JOB',
    fallback: 100,
    min: 1,
    max: 10_000,
    meaning: 'most images in one job',
    reason: 'one job is one table partition, written in batches of 100; a submit stays within seconds',
  },
  storageNamespace: {
    kind: 'text',
    env: 'STORAGE_NAMESPACE',
    fallback: '',
    shownDefault: '(none)',
    pattern: /^[a-z0-9]{0,20}$/,
    expected: 'up to 20 lower-case letters or digits',
    meaning: 'prefix for every container, queue and table name',
    reason: 'several apps or test runs share one storage account without touching each other',
  },
  metricsSchedule: {
    kind: 'text',
    env: 'METRICS_SCHEDULE',
    fallback: '*/10 * * * * *',
    pattern: TIMER_SCHEDULE,
    expected:
      'an NCRONTAB schedule of 6 fields ({second} {minute} {hour} {day} {month} {day-of-week}) or 5 (without {second}), or a TimeSpan such as 00:00:10',
    meaning: 'schedule of the metrics timer: NCRONTAB (6 fields, or 5 without seconds) or a TimeSpan interval',
    reason: 'a snapshot every 10 s follows a scale-up as it happens',
  },
  metricsRetentionMinutes: {
    kind: 'integer',
    env: 'METRICS_RETENTION_MINUTES',
    fallback: 60,
    min: 1,
    max: 7 * 24 * 60,
    meaning: 'how long snapshots are kept',
    reason: 'an hour of charts; pruning costs grow with the retention',
  },
  workerHeartbeatSeconds: {
    kind: 'integer',
    env: 'WORKER_HEARTBEAT_SECONDS',
    fallback: 5,
    min: 1,
    max: 3600,
    meaning: 'worker heartbeat interval; three missed beats mean dead',
    reason: 'a dead worker shows within 15 s for one table write per worker every 5 s',
  },
  workerSlots: {
    kind: 'integer',
    env: 'WORKER_SLOTS',
    fallback: 12,
    min: 1,
    max: 1000,
    meaning: 'tasks one worker runs at once (host.json batchSize + newBatchThreshold), for utilization',
    reason: 'host.json: batchSize 8 + newBatchThreshold 4',
  },
  appInsightsConnectionString: {
    kind: 'text',
    env: 'APPLICATIONINSIGHTS_CONNECTION_STRING',
    fallback: '',
    shownDefault: '(none)',
    pattern: /^(|.*InstrumentationKey=.+)$/is,
    expected: 'an Application Insights connection string (InstrumentationKey=…;IngestionEndpoint=…)',
    secret: true,
    meaning: 'send metrics and scaling events to Application Insights; without it telemetry is off',
    reason: 'telemetry is opt-in: without a connection string nothing is loaded or sent',
  },
  serviceName: {
    kind: 'text',
    env: 'OTEL_SERVICE_NAME',
    fallback: 'image-pipeline',
    pattern: /^[\x21-\x7e][\x20-\x7e]{0,127}$/,
    expected: 'a printable name of up to 128 characters',
    meaning: 'cloud role name the telemetry is reported under',
    reason: 'Application Insights groups telemetry by cloud role; "unknown_service:node" tells nobody anything',
  },
  storageRequestTimeoutMs: {
    kind: 'integer',
    env: 'STORAGE_REQUEST_TIMEOUT_MS',
    fallback: 5000,
    min: 100,
    max: 600_000,
    meaning:
      'how long one storage call may take while an HTTP request waits (two tries at most); an upload must reach storage within it; beyond it the route answers 503 with Retry-After',
    reason:
      'a 50 MB upload reaches storage in the same region in well under 5 s; a refused or throttled storage answers 503 within a second',
  },
  resultLinkTtlSeconds: {
    kind: 'integer',
    env: 'RESULT_LINK_TTL_SECONDS',
    fallback: 900,
    min: 60,
    max: 604_800,
    meaning:
      'how long a result link (the 302 of GET /api/tasks/{id}/result and result_url) stays valid: a read-only SAS for that one blob',
    reason:
      'long enough to start a download after polling, short enough that a leaked link soon stops working; 7 days is the most a user delegation key allows',
  },
  appInsightsAuthentication: {
    kind: 'text',
    env: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
    fallback: '',
    shownDefault: '(none)',
    pattern: /^(|Authorization=AAD(;ClientId=[0-9a-f-]{36})?|ClientId=[0-9a-f-]{36};Authorization=AAD)$/i,
    expected: 'Authorization=AAD, optionally with ;ClientId=<client id of a user-assigned managed identity>',
    meaning:
      'send telemetry with a Microsoft Entra token of the managed identity (the client id picks a user-assigned one), as the Functions host does',
    reason:
      'an Application Insights resource with local authentication disabled refuses telemetry sent with the instrumentation key alone',
  },
  workerTasksPerMin: {
    kind: 'text',
    env: 'WORKER_TASKS_PER_MIN',
    fallback: '',
    shownDefault: `(measured: ${CAPABILITIES.map((c) => `${c.name}=${c.capacity.tasksPerMinPerWorker}`).join(',')})`,
    pattern: CAPACITY_LIST,
    expected: `comma-separated capability=tasks per minute (at least 1), capabilities among ${CAPABILITIES.map((c) => c.name).join(', ')} (e.g. light=1800,heavy=1500)`,
    meaning:
      'tasks one busy worker completes per minute, per capability: the scaling advice uses it until workers have completed tasks to measure',
    reason:
      'measured with `npm run bench -- e2e` on 2 vCPU with Azurite on the same cores (queued tasks/s × 60); re-measure on another VM size',
  },
  callbackSecret: {
    kind: 'text',
    env: 'CALLBACK_SECRET',
    fallback: '',
    shownDefault: '(none: callbacks refused)',
    pattern: /^(|[\x21-\x7e]{32,512})$/,
    expected: 'a key of 32 to 512 printable characters without spaces (e.g. `openssl rand -hex 32`)',
    secret: true,
    meaning:
      'HMAC-SHA256 key that signs every completion callback (X-Signature); without it a job with callback_url is refused (501)',
    reason: 'an unsigned callback could be forged by anyone who learns the URL: no secret, no callbacks',
  },
  callbackAllowPrivate: {
    kind: 'text',
    env: 'CALLBACK_ALLOW_PRIVATE',
    fallback: 'false',
    pattern: /^(true|false)$/,
    expected: 'true or false',
    meaning:
      'true: callback URLs may be http and may resolve to loopback, link-local or private addresses (development, tests, receivers on a private network)',
    reason: 'off, a callback URL cannot make the app call its own network or the cloud metadata endpoint (SSRF)',
  },
  callbackMaxAttempts: {
    kind: 'integer',
    env: 'CALLBACK_MAX_ATTEMPTS',
    fallback: 8,
    min: 1,
    max: 50,
    meaning: 'deliveries of a completion callback before it is given up (state dead, shown on GET /api/jobs/{id})',
    reason: 'with the 30 s base delay doubling, 8 attempts span about an hour of receiver downtime',
  },
  callbackTimeoutMs: {
    kind: 'integer',
    env: 'CALLBACK_TIMEOUT_MS',
    fallback: 10_000,
    min: 100,
    max: 120_000,
    meaning: 'how long one callback delivery may take (connect, send, answer) before it counts as failed',
    reason: 'a receiver should acknowledge at once and work later; 10 s is what GitHub allows',
  },
  callbackRetryBaseSeconds: {
    kind: 'integer',
    env: 'CALLBACK_RETRY_BASE_SECONDS',
    fallback: 30,
    min: 1,
    max: 3600,
    meaning:
      'delay before the second callback delivery; each later one waits twice as long as the one before (at most 1 hour)',
    reason: 'a receiver that is restarting gets time to come back; 1 in tests',
  },
  retentionResultsDays: {
    kind: 'integer',
    env: 'RETENTION_RESULTS_DAYS',
    fallback: 30,
    min: 0,
    max: 36_500,
    meaning:
      'days a result blob (container `processed`) is kept after it was written; 0 keeps results forever. An expired result answers 410',
    reason:
      'a month to fetch a result is far beyond any client polling a job; results are copies anyone can make again',
  },
  retentionUploadsDays: {
    kind: 'integer',
    env: 'RETENTION_UPLOADS_DAYS',
    fallback: 30,
    min: 0,
    max: 36_500,
    meaning:
      'days an uploaded image (container `images`) is kept after it was written; 0 keeps uploads forever. The sample set seeded by `npm start` is never removed',
    reason:
      'uploads are inputs for jobs that run within minutes; a month leaves time to retry; set 0 to keep a library of images',
  },
  retentionTasksDays: {
    kind: 'integer',
    env: 'RETENTION_TASKS_DAYS',
    fallback: 30,
    min: 0,
    max: 36_500,
    meaning:
      'days the task records of a job are kept after its last task ended (a job with a queued or processing task is never removed); their results go with them; 0 keeps them forever',
    reason:
      'as long as the results: a record without its result still says what happened, a result without its record cannot be found',
  },
  retentionTasksScanDays: {
    kind: 'integer',
    env: 'RETENTION_TASKS_SCAN_DAYS',
    fallback: 30,
    min: 0,
    max: 36_500,
    meaning:
      'every how many days the retention timer finds expired task records by a scan of Table `tasks` instead of the job index (on UTC days whose number is a multiple of it), so that records of jobs without an index row go too (jobs created before the index existed, a job delete interrupted after it removed the row); 0 never, 1 every run',
    reason:
      'a scan reads every task record (in Azure a full table scan, millions of entities at scale) where the index reads only the expired days; records without an index row are rare and are kept at most this much longer',
  },
  retentionDeadLettersDays: {
    kind: 'integer',
    env: 'RETENTION_DEAD_LETTERS_DAYS',
    fallback: 14,
    min: 0,
    max: 36_500,
    meaning:
      'days a dead letter (Table `deadletters`) is kept after its message failed; 0 keeps them forever. A message still waiting in a `-poison` queue is not one yet: the host copies it there with the 7-day time-to-live the storage service gives by default',
    reason:
      'two weeks covers a holiday before someone looks at the failures; a requeued letter starts again. The poison function records a letter as soon as the host moves its message, so the 7 days of that copy do not bound it',
  },
  retentionMetricsDays: {
    kind: 'integer',
    env: 'RETENTION_METRICS_DAYS',
    fallback: 7,
    min: 0,
    max: 36_500,
    meaning:
      'days any row of Table `metrics` is kept after it was written (never less than METRICS_RETENTION_MINUTES); 0 keeps them forever',
    reason:
      'the metrics timer keeps METRICS_RETENTION_MINUTES of snapshots itself; this catches what it leaves (its timer stopped, other rows), and 7 days is the longest history it allows',
  },
  retentionSchedule: {
    kind: 'text',
    env: 'RETENTION_SCHEDULE',
    fallback: '0 30 3 * * *',
    pattern: TIMER_SCHEDULE,
    expected:
      'an NCRONTAB schedule of 6 fields ({second} {minute} {hour} {day} {month} {day-of-week}) or 5 (without {second}), or a TimeSpan such as 1.00:00:00',
    meaning: 'schedule of the retention timer (UTC): NCRONTAB (6 fields, or 5 without seconds) or a TimeSpan interval',
    reason: 'once a day, at a quiet hour; a run missed while the app was down runs when it starts (schedule monitor)',
  },
  retentionMaxDeletes: {
    kind: 'integer',
    env: 'RETENTION_MAX_DELETES',
    fallback: 5000,
    min: 1,
    max: 1_000_000,
    meaning:
      'most rows and blobs one run of the retention timer deletes; the rest is left for the next run (the log says how many)',
    reason:
      '5000 deletes take about a minute (50 table transactions, blobs 100 at a time), far within the 10-minute functionTimeout',
  },
  retentionBlobs: {
    kind: 'text',
    env: 'RETENTION_BLOBS',
    fallback: 'timer',
    pattern: /^(timer|lifecycle)$/,
    expected: "'timer' or 'lifecycle'",
    meaning:
      "who deletes expired results and uploads: `timer` (the retention timer lists the containers) or `lifecycle` (the storage account's lifecycle management rules; the timer does only tables and the results of jobs it removes)",
    reason:
      'Azurite and most Kubernetes storage have no lifecycle rules; the Azure template sets `lifecycle`, where deletion by rule costs nothing',
  },
} as const satisfies Record<string, Setting>;

export type Settings = SettingsOf<typeof SETTINGS>;

/**
 * Reads a table of settings from `env`: a missing or blank variable takes its default, a bad one is
 * reported with every other bad one in one ConfigError.
 */
export function readSettings<T extends Record<string, Setting>>(table: T, env: NodeJS.ProcessEnv): SettingsOf<T> {
  const problems: FieldProblem[] = [];
  const values: Record<string, number | string> = {};
  for (const [key, setting] of Object.entries(table)) {
    const raw = env[setting.env]?.trim();
    values[key] = raw === undefined || raw === '' ? setting.fallback : parse(setting, raw, problems);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(values) as SettingsOf<T>;
}

/** A refused secret setting: what was expected, and the value's length only (it may be a real key, mistyped). */
function secretProblem(field: string, expected: string, raw: string): FieldProblem {
  const received = `a value of ${raw.length} characters (not shown: it holds a secret)`;
  return { field, expected, received, message: `Expected ${expected} for ${field} but received ${received}` };
}

function parse(setting: Setting, raw: string, problems: FieldProblem[]): number | string {
  if (setting.kind === 'text') {
    if (setting.pattern.test(raw)) return raw;
    problems.push(
      setting.secret
        ? secretProblem(setting.env, setting.expected, raw)
        : fieldProblem(setting.env, setting.expected, raw),
    );
    return setting.fallback;
  }
  const value = Number(raw.replace(/_/g, ''));
  if (Number.isInteger(value) && value >= setting.min && value <= setting.max) return value;
  problems.push(fieldProblem(setting.env, `an integer between ${setting.min} and ${setting.max}`, raw));
  return setting.fallback;
}

export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  return readSettings(SETTINGS, env);
}

let processSettings: Settings | undefined;

/** The settings of this process, read from the environment once. */
export function appSettings(): Settings {
  processSettings ??= loadSettings();
  return processSettings;
}
