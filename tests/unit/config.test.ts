import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../../shared/errors';
import { loadSettings, SETTINGS } from '../../shared/config';

function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadSettings(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).errors.map((e) => e.message);
  }
  throw new Error('expected a ConfigError');
}

describe('settings from the environment', () => {
  it('has safe defaults', () => {
    expect(loadSettings({})).toMatchObject({
      maxInputPixels: 100_000_000,
      maxOutputWidth: 16383,
      maxOutputHeight: 16383,
      maxOutputPixels: 100_000_000,
      maxFiltersPerTask: 20,
      maxBodyBytes: 50 * 1024 * 1024,
      maxImagesPerJob: 100,
      storageNamespace: '',
      metricsSchedule: '*/10 * * * * *',
      metricsRetentionMinutes: 60,
      workerHeartbeatSeconds: 5,
      workerSlots: 12,
      appInsightsConnectionString: '',
      serviceName: 'image-pipeline',
    });
    expect(loadSettings({}).sharpConcurrency).toBeGreaterThanOrEqual(1);
  });

  it('reads each setting, allowing digit separators and surrounding blanks', () => {
    expect(
      loadSettings({
        MAX_INPUT_PIXELS: '50_000_000',
        MAX_OUTPUT_WIDTH: ' 4096 ',
        MAX_FILTERS_PER_TASK: '5',
        STORAGE_NAMESPACE: 'run7',
        METRICS_SCHEDULE: '0 */5 * * * *',
        OTEL_SERVICE_NAME: 'photos',
      }),
    ).toMatchObject({
      maxInputPixels: 50_000_000,
      maxOutputWidth: 4096,
      maxFiltersPerTask: 5,
      storageNamespace: 'run7',
      metricsSchedule: '0 */5 * * * *',
      serviceName: 'photos',
    });
  });

  it('treats a blank value as unset', () => {
    expect(loadSettings({ OTEL_SERVICE_NAME: '', WORKER_SLOTS: '  ' })).toMatchObject({
      serviceName: 'image-pipeline',
      workerSlots: 12,
    });
  });

  it('reports every bad setting at once, naming the variable, the range and the value', () => {
    expect(problemsOf({ MAX_OUTPUT_WIDTH: 'wide', MAX_FILTERS_PER_TASK: '0' })).toEqual([
      "Expected an integer between 1 and 65535 for MAX_OUTPUT_WIDTH but received 'wide' of type string",
      "Expected an integer between 1 and 200 for MAX_FILTERS_PER_TASK but received '0' of type string",
    ]);
  });

  it('refuses what used to turn into NaN or a 500 later: API limits, intervals, schedules, names', () => {
    expect(
      problemsOf({
        MAX_BODY_BYTES: '10MB',
        MAX_IMAGES_PER_JOB: '-1',
        WORKER_HEARTBEAT_SECONDS: 'often',
        METRICS_RETENTION_MINUTES: '1.5',
        WORKER_SLOTS: '0',
        SHARP_CONCURRENCY: 'all',
        METRICS_SCHEDULE: 'every 10 seconds',
        STORAGE_NAMESPACE: 'Bad-Name',
      }),
    ).toEqual([
      "Expected an integer between 1 and 256 for SHARP_CONCURRENCY but received 'all' of type string",
      "Expected an integer between 1 and 1073741824 for MAX_BODY_BYTES but received '10MB' of type string",
      "Expected an integer between 1 and 10000 for MAX_IMAGES_PER_JOB but received '-1' of type string",
      "Expected up to 20 lower-case letters or digits for STORAGE_NAMESPACE but received 'Bad-Name' of type string",
      "Expected an NCRONTAB schedule of 6 fields ({second} {minute} {hour} {day} {month} {day-of-week}) or 5 (without {second}), or a TimeSpan such as 00:00:10 for METRICS_SCHEDULE but received 'every 10 seconds' of type string",
      "Expected an integer between 1 and 10080 for METRICS_RETENTION_MINUTES but received '1.5' of type string",
      "Expected an integer between 1 and 3600 for WORKER_HEARTBEAT_SECONDS but received 'often' of type string",
      "Expected an integer between 1 and 1000 for WORKER_SLOTS but received '0' of type string",
    ]);
  });

  // The shapes the real timer extension accepts: azure-webjobs-sdk-extensions
  // src/WebJobs.Extensions/Extensions/Timers/Scheduling/TimerSchedule.cs (Create) and CronSchedule.cs (HasSeconds).
  it('a refused Application Insights connection string is described, never echoed (it holds a key)', () => {
    const mistyped = 'InstrumentationKey =0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0;IngestionEndpoint=https://x/';
    const [problem] = problemsOf({ APPLICATIONINSIGHTS_CONNECTION_STRING: mistyped });
    expect(problem).toMatch(/APPLICATIONINSIGHTS_CONNECTION_STRING but received a value of 85 characters \(not shown/);
    expect(problem).not.toContain('0f1e2d3c');
  });

  it('METRICS_SCHEDULE takes what the timer trigger takes: 6- or 5-field NCRONTAB, or a TimeSpan', () => {
    for (const schedule of ['*/10 * * * * *', '*/5 * * * *', '00:00:10', '1.00:00:00', ' 0 */2 * * * * '])
      expect(loadSettings({ METRICS_SCHEDULE: schedule }).metricsSchedule).toBe(schedule.trim());
    for (const schedule of ['* * * *', '0 0 0 * * * 2024', '10 seconds', '00:00:10:00'])
      expect(problemsOf({ METRICS_SCHEDULE: schedule })).toEqual([
        expect.stringContaining(`for METRICS_SCHEDULE but received '${schedule}'`),
      ]);
  });

  it('RESULT_LINK_TTL_SECONDS: 15 minutes by default, a minute to the 7 days a user delegation key allows', () => {
    expect(loadSettings({}).resultLinkTtlSeconds).toBe(900);
    expect(loadSettings({ RESULT_LINK_TTL_SECONDS: '604800' }).resultLinkTtlSeconds).toBe(604_800);
    for (const ttl of ['59', '604801', '15m'])
      expect(problemsOf({ RESULT_LINK_TTL_SECONDS: ttl })).toEqual([
        `Expected an integer between 60 and 604800 for RESULT_LINK_TTL_SECONDS but received '${ttl}' of type string`,
      ]);
  });

  it('WORKER_TASKS_PER_MIN: per-capability service rates, each a known capability and at least 1 task/min', () => {
    expect(loadSettings({}).workerTasksPerMin).toBe('');
    expect(loadSettings({ WORKER_TASKS_PER_MIN: ' light=1800,heavy=1500.5 ' }).workerTasksPerMin).toBe(
      'light=1800,heavy=1500.5',
    );
    expect(loadSettings({ WORKER_TASKS_PER_MIN: 'heavy=90' }).workerTasksPerMin).toBe('heavy=90');
    for (const value of ['medium=5', 'light=0', 'light=', 'light=abc', 'light=1800;heavy=2', 'light=-3'])
      expect(problemsOf({ WORKER_TASKS_PER_MIN: value })).toEqual([
        expect.stringContaining(`for WORKER_TASKS_PER_MIN but received '${value}'`),
      ]);
  });

  it('WORKER_SLOTS defaults to what host.json lets one worker run at once (batchSize + newBatchThreshold)', () => {
    const host = JSON.parse(readFileSync(path.join(__dirname, '../../host.json'), 'utf8')) as {
      extensions: { queues: { batchSize: number; newBatchThreshold: number } };
    };
    const { batchSize, newBatchThreshold } = host.extensions.queues;
    expect(SETTINGS.workerSlots.fallback).toBe(batchSize + newBatchThreshold);
    expect(SETTINGS.workerSlots.reason).toBe(
      `host.json: batchSize ${batchSize} + newBatchThreshold ${newBatchThreshold}`,
    );
  });

  it('RETENTION_*: days per kind of data (0 keeps forever), a daily schedule, a bound per run, who deletes blobs', () => {
    expect(loadSettings({})).toMatchObject({
      retentionResultsDays: 30,
      retentionUploadsDays: 30,
      retentionTasksDays: 30,
      retentionDeadLettersDays: 14,
      retentionMetricsDays: 7,
      retentionSchedule: '0 30 3 * * *',
      retentionMaxDeletes: 5000,
      retentionBlobs: 'timer',
    });
    expect(
      loadSettings({ RETENTION_RESULTS_DAYS: '0', RETENTION_BLOBS: 'lifecycle', RETENTION_SCHEDULE: '1.00:00:00' }),
    ).toMatchObject({ retentionResultsDays: 0, retentionBlobs: 'lifecycle', retentionSchedule: '1.00:00:00' });
    expect(
      problemsOf({
        RETENTION_RESULTS_DAYS: '30d',
        RETENTION_UPLOADS_DAYS: '-1',
        RETENTION_TASKS_DAYS: '1.5',
        RETENTION_DEAD_LETTERS_DAYS: 'two weeks',
        RETENTION_METRICS_DAYS: '40000',
        RETENTION_SCHEDULE: 'daily',
        RETENTION_MAX_DELETES: '0',
        RETENTION_BLOBS: 'both',
      }),
    ).toEqual([
      "Expected an integer between 0 and 36500 for RETENTION_RESULTS_DAYS but received '30d' of type string",
      "Expected an integer between 0 and 36500 for RETENTION_UPLOADS_DAYS but received '-1' of type string",
      "Expected an integer between 0 and 36500 for RETENTION_TASKS_DAYS but received '1.5' of type string",
      "Expected an integer between 0 and 36500 for RETENTION_DEAD_LETTERS_DAYS but received 'two weeks' of type string",
      "Expected an integer between 0 and 36500 for RETENTION_METRICS_DAYS but received '40000' of type string",
      expect.stringContaining("for RETENTION_SCHEDULE but received 'daily' of type string"),
      "Expected an integer between 1 and 1000000 for RETENTION_MAX_DELETES but received '0' of type string",
      "Expected 'timer' or 'lifecycle' for RETENTION_BLOBS but received 'both' of type string",
    ]);
  });

  it('RETENTION_TASKS_SCAN_DAYS: a scan of the task records every 30 days by default, 0 never, 1 every run', () => {
    expect(loadSettings({}).retentionTasksScanDays).toBe(30);
    expect(loadSettings({ RETENTION_TASKS_SCAN_DAYS: '0' }).retentionTasksScanDays).toBe(0);
    expect(problemsOf({ RETENTION_TASKS_SCAN_DAYS: 'monthly' })).toEqual([
      "Expected an integer between 0 and 36500 for RETENTION_TASKS_SCAN_DAYS but received 'monthly' of type string",
    ]);
  });

  it('documents what each setting means and why each default is what it is', () => {
    for (const setting of Object.values(SETTINGS)) {
      expect(setting.meaning.length).toBeGreaterThan(10);
      expect(setting.reason.length).toBeGreaterThan(20);
    }
  });
});
