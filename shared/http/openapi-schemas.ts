/**
 * The JSON Schemas (2020-12, as OpenAPI 3.1 takes them) of what the API reads and answers, built from
 * the code's own tables: the filter catalog (every parameter with its type, range and default), the
 * error registry, the capability table and the output formats. Response objects list every field and
 * refuse others (additionalProperties: false), so a field added to an answer without its schema fails
 * the contract tests instead of drifting silently.
 */
import { CAPABILITIES } from '../capabilities';
import { ERROR_CODES, type ErrorCode } from '../errors';
import { filterCatalog, type CatalogParam } from '../imaging/catalog';
import { ACCEPTED_INPUT_FORMATS } from '../imaging/input';
import type { Settings } from '../config';
import { OUTPUT_FORMATS } from '../imaging/output';
import type { ScalingAction, Urgency } from '../metrics/recommendation';
import type { WorkerStatus } from '../metrics/worker-registry';
import type { CallbackState } from '../tasks/callbacks';
import type { JobStatus } from '../tasks/jobs';
import type { FailureType, TaskStatus } from '../tasks/store';
import type { WorkerOutcome } from '../tasks/worker';
import { PROBLEM_TYPE_PREFIX } from './respond';

export type Schema = Record<string, unknown>;

/** Keys of a record that must name every member of a union: the compiler fails when one is added. */
const every = <T extends string>(members: Record<T, true>): T[] => Object.keys(members) as T[];

const TASK_STATUSES = every<TaskStatus>({ queued: true, processing: true, succeeded: true, failed: true });
const JOB_STATUSES = every<JobStatus>({
  ...{ queued: true, processing: true, succeeded: true, failed: true },
  partially_failed: true,
});
const CALLBACK_STATES = every<CallbackState>({ pending: true, delivering: true, delivered: true, dead: true });
const FAILURE_TYPES = every<FailureType>({ job_failure: true, worker_failure: true });
const WORKER_STATUSES = every<WorkerStatus>({ idle: true, busy: true, dead: true, stopped: true });
const OUTCOMES = every<WorkerOutcome | 'error'>({
  succeeded: true,
  already_succeeded: true,
  failed: true,
  sent_to_poison: true,
  deferred: true,
  lost_claim: true,
  error: true,
});
const ACTIONS = every<ScalingAction>({ SCALE_UP: true, SCALE_DOWN: true, MAINTAIN: true });
const URGENCIES = every<Urgency>({ NONE: true, LOW: true, MEDIUM: true, HIGH: true });

export const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const str: Schema = { type: 'string' };
const int: Schema = { type: 'integer', minimum: 0 };
const num: Schema = { type: 'number' };
const bool: Schema = { type: 'boolean' };
const time: Schema = { type: 'string', format: 'date-time' };
const url: Schema = { type: 'string', format: 'uri' };
const uuid: Schema = { type: 'string', format: 'uuid' };
/** The schema or null (an enum lists null too: `enum` is checked on its own, whatever `type` allows). */
const nullable = (s: Schema): Schema => ({
  ...s,
  type: [s.type, 'null'],
  ...(Array.isArray(s.enum) ? { enum: [...(s.enum as unknown[]), null] } : {}),
});
const oneOfValues = (values: readonly string[]): Schema => ({ type: 'string', enum: [...values] });
const arrayOf = (items: Schema): Schema => ({ type: 'array', items });
/** A closed object: every property listed, `optional` ones may be absent. */
function object(properties: Record<string, Schema>, optional: readonly string[] = []): Schema {
  return {
    type: 'object',
    properties,
    required: Object.keys(properties).filter((k) => !optional.includes(k)),
    additionalProperties: false,
  };
}
const capabilityName = oneOfValues(CAPABILITIES.map((c) => c.name));

/** Every problem `type` the app answers: one per error code, and the generic internal error. */
export const PROBLEM_TYPES: Readonly<Record<string, { status: number; title: string }>> = {
  ...Object.fromEntries(
    (Object.keys(ERROR_CODES) as ErrorCode[]).map((code) => [`${PROBLEM_TYPE_PREFIX}${code}`, ERROR_CODES[code]]),
  ),
  [`${PROBLEM_TYPE_PREFIX}internal`]: { status: 500, title: 'Internal error' },
};

/** The name of the problem schema for one status: `Problem404` allows only the codes that answer 404. */
export const problemSchemaName = (status: number) => `Problem${status}`;

function problemSchemas(): Record<string, Schema> {
  const statuses = [...new Set(Object.values(PROBLEM_TYPES).map((p) => p.status))].sort();
  const types = Object.keys(PROBLEM_TYPES);
  const table = types.map((t) => `| \`${t}\` | ${PROBLEM_TYPES[t].status} | ${PROBLEM_TYPES[t].title} |`).join('\n');
  return {
    FieldProblem: {
      ...object({ field: str, message: str, expected: str, received: str }, ['expected', 'received']),
      description: 'One problem with one field: what was expected and what was received.',
    },
    Problem: {
      ...object(
        {
          type: { ...oneOfValues(types), format: 'uri' },
          title: str,
          status: { type: 'integer', minimum: 400, maximum: 599 },
          detail: str,
          instance: { type: 'string', description: 'The request path.' },
          errors: { ...arrayOf(ref('FieldProblem')), description: 'Every problem found, up to 20.' },
        },
        ['instance', 'errors'],
      ),
      description: `An RFC 9457 problem (application/problem+json). The type names the error code:\n\n| type | status | title |\n|---|---|---|\n${table}`,
    },
    ...Object.fromEntries(
      statuses.map((status) => [
        problemSchemaName(status),
        {
          type: 'object',
          allOf: [ref('Problem')],
          properties: {
            status: { const: status },
            type: { enum: types.filter((t) => PROBLEM_TYPES[t].status === status) },
          },
        },
      ]),
    ),
  };
}

/** A filter parameter as JSON Schema: its type, range or values, and default. */
function paramSchema(p: CatalogParam): Schema {
  const base: Schema = { description: p.description, ...(p.default !== undefined ? { default: p.default } : {}) };
  switch (p.type) {
    case 'integer':
    case 'number':
      return { ...base, type: p.type, minimum: p.min, maximum: p.max };
    case 'enum':
      return { ...base, type: 'string', enum: p.enum };
    case 'boolean':
      return { ...base, type: 'boolean' };
    case 'color':
      return { ...base, type: 'string', pattern: '^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$' };
  }
}

/** The pipeline: what a job asks for, with one schema per filter from the catalog. */
function pipelineSchemas(settings: Settings): Record<string, Schema> {
  const filters = filterCatalog(settings);
  const filterName = (name: string) => `Filter_${name}`;
  const perFilter = Object.fromEntries(
    filters.map((f) => [
      filterName(f.name),
      {
        type: 'object',
        description: `${f.description} Capability: ${f.capability}. Parameters may also come from filter_params.${f.name}; a required one must be in one of the two.`,
        properties: {
          name: { const: f.name },
          ...Object.fromEntries(Object.entries(f.params).map(([k, p]) => [k, nullable(paramSchema(p))])),
        },
        required: ['name'],
        additionalProperties: false,
      },
    ]),
  );
  const normalized = filters.map((f) => ({
    type: 'object',
    properties: {
      name: { const: f.name },
      ...Object.fromEntries(
        Object.entries(f.params).map(([k, p]) => [
          k,
          p.required || p.default != null ? paramSchema(p) : nullable(paramSchema(p)),
        ]),
      ),
    },
    required: ['name', ...Object.keys(f.params)],
    additionalProperties: false,
  }));
  return {
    ...perFilter,
    Filter: {
      description:
        'A filter: its name (parameters from filter_params or defaults), or an object with its name and parameters.',
      oneOf: [{ type: 'string', enum: filters.map((f) => f.name) }, ...filters.map((f) => ref(filterName(f.name)))],
    },
    FilterParams: {
      type: 'object',
      description: 'Parameters by filter name, for filters given by name in `filters`.',
      properties: Object.fromEntries(
        filters.map((f) => [
          f.name,
          {
            type: 'object',
            properties: Object.fromEntries(Object.entries(f.params).map(([k, p]) => [k, nullable(paramSchema(p))])),
            additionalProperties: false,
          },
        ]),
      ),
      additionalProperties: false,
    },
    Output: {
      ...object(
        {
          format: { ...oneOfValues(OUTPUT_FORMATS), default: 'jpeg' },
          quality: { type: 'integer', minimum: 1, maximum: 100, default: 80 },
        },
        ['format', 'quality'],
      ),
      description: 'How the results are encoded.',
    },
    Encoding: object({ format: oneOfValues(OUTPUT_FORMATS), quality: { type: 'integer', minimum: 1, maximum: 100 } }),
    NormalizedFilter: { description: 'A filter as a task runs it: every parameter filled in.', oneOf: normalized },
    SubmitJobRequest: {
      ...object(
        {
          images: {
            ...arrayOf({ type: 'string', pattern: '^(?!\\.)(?!.*\\.\\.)[A-Za-z0-9._-]{1,200}$' }),
            minItems: 1,
            maxItems: settings.maxImagesPerJob,
            description: 'Names of blobs in the images container; omitted: every image there.',
          },
          filters: { ...arrayOf(ref('Filter')), maxItems: settings.maxFiltersPerTask, description: 'Pipeline order.' },
          filter_params: ref('FilterParams'),
          output: ref('Output'),
          callback_url: ref('CallbackUrl'),
        },
        ['images', 'filter_params', 'output', 'callback_url'],
      ),
    },
    CallbackUrl: {
      type: 'string',
      format: 'uri',
      maxLength: 2048,
      description:
        'Where to POST the signed completion event (X-Signature: HMAC-SHA256 with CALLBACK_SECRET). https, no credentials, ' +
        'a host that resolves to public addresses only (unless CALLBACK_ALLOW_PRIVATE=true); refused with 501 ' +
        'callbacks_not_configured when the deployment has no CALLBACK_SECRET.',
    },
    SubmitJobForm: {
      type: 'object',
      description: 'One or more file parts (the images, any field name) and these text fields.',
      properties: {
        filters: { type: 'string', description: 'Comma-separated filter names, or a JSON array of filters.' },
        filter_params: { type: 'string', description: 'JSON: FilterParams.' },
        output: { type: 'string', description: 'JSON: Output.' },
        callback_url: ref('CallbackUrl'),
      },
      required: ['filters'],
    },
  };
}

const taskRecordProperties: Record<string, Schema> = {
  task_id: { type: 'string', pattern: '^[0-9a-f-]{36}_\\d{4,}$' },
  job_id: uuid,
  status: oneOfValues(TASK_STATUSES),
  image: str,
  filters: arrayOf(ref('NormalizedFilter')),
  output_spec: ref('Encoding'),
  capability: capabilityName,
  queue: str,
  attempts: int,
  worker_id: nullable(str),
  created_at: time,
  started_at: nullable(time),
  completed_at: nullable(time),
  duration_ms: nullable(num),
  output: { oneOf: [{ type: 'null' }, ref('TaskResult')] },
  failure_type: { oneOf: [{ type: 'null' }, oneOfValues(FAILURE_TYPES)] },
  failure_reason: nullable(str),
  error: nullable(str),
  status_url: url,
  result_url: { ...url, description: 'A short-lived read-only link once succeeded, else the result route.' },
  image_url: { ...url, description: 'The source image (GET /api/images/{name}); in a job detail.' },
};

function taskSchemas(): Record<string, Schema> {
  return {
    TaskResult: object({ blob: str, format: str, content_type: str, width: int, height: int, bytes: int }),
    TaskRecord: object(taskRecordProperties, ['image_url']),
    Task: object(
      {
        ...taskRecordProperties,
        queue_position: object(
          { queue: str, messages_ahead: int, approximate: bool, live_workers: int, waiting_for: str },
          ['waiting_for'],
        ),
        claim: object({ worker_id: nullable(str), since: nullable(time), live: bool, next: str }, ['next']),
      },
      ['queue_position', 'claim', 'image_url'],
    ),
    JobSubmitted: object(
      {
        job_id: uuid,
        status_url: url,
        tasks: arrayOf(
          object({
            task_id: str,
            image: str,
            capability: capabilityName,
            status: oneOfValues(TASK_STATUSES),
            status_url: url,
            result_url: url,
          }),
        ),
        callback: object({ url, state: oneOfValues(['pending']) }),
      },
      ['callback'],
    ),
    JobList: object({
      jobs: arrayOf(
        object(
          {
            job_id: uuid,
            status: oneOfValues(JOB_STATUSES),
            created_at: time,
            total: int,
            counts: object(Object.fromEntries(TASK_STATUSES.map((s) => [s, int]))),
            capability: capabilityName,
            images: int,
            filters: arrayOf(str),
            output_format: str,
            retries: int,
            status_url: url,
          },
          [],
        ),
      ),
      count: int,
      continuation: {
        ...nullable(str),
        description: 'Pass as ?continuation= for the next page; null when the walk is over.',
      },
      next_url: nullable(url),
    }),
    JobRetried: object({
      job_id: uuid,
      requeued: { ...arrayOf(str), description: 'The failed tasks put back on their queue, as a new attempt each.' },
      failed_before: int,
      status_url: url,
    }),
    JobDeleted: object({
      job_id: uuid,
      deleted: object({ task_records: int, results: int, job_record: bool, dead_letters: int, callback: bool }),
      kept: arrayOf(str),
    }),
    Callback: object({
      url,
      state: oneOfValues(CALLBACK_STATES),
      event_id: uuid,
      attempts: int,
      max_attempts: int,
      last_status: nullable(int),
      last_error: nullable(str),
      last_attempt_at: nullable(time),
      next_attempt_at: nullable(time),
      delivered_at: nullable(time),
    }),
    Job: object(
      {
        job_id: uuid,
        status: oneOfValues(JOB_STATUSES),
        total: int,
        counts: object(Object.fromEntries(TASK_STATUSES.map((s) => [s, int]))),
        tasks: arrayOf(ref('TaskRecord')),
        callback: {
          ...ref('Callback'),
          description: 'Only for a job submitted with callback_url: where its event stands.',
        },
      },
      ['callback'],
    ),
  };
}

function imageSchemas(): Record<string, Schema> {
  return {
    ImageList: object({
      container: str,
      count: int,
      images: arrayOf(object({ name: str, bytes: int, content_type: nullable(str), last_modified: nullable(time) })),
    }),
    StoredImage: object({ name: str, content_type: str, bytes: int }),
    ImageInfo: object({
      name: str,
      format: oneOfValues(ACCEPTED_INPUT_FORMATS),
      width: int,
      height: int,
      bytes: int,
      channels: nullable(int),
      space: nullable(str),
      has_alpha: bool,
      orientation: { type: 'integer', minimum: 1, maximum: 8 },
    }),
  };
}

function metricsSchemas(): Record<string, Schema> {
  const capabilityMetrics = object({
    queue: str,
    queue_length: int,
    poison_length: int,
    oldest_message_age_s: nullable(num),
    workers: object({ active: int, busy: int, utilization: num }),
    tasks: object({
      completed: int,
      failed: int,
      success_rate: nullable(num),
      throughput_per_min: num,
      arrivals_per_min: num,
      latency_ms: ref('Percentiles'),
    }),
    recommendation: object({
      current_workers: int,
      recommended_workers: int,
      action: oneOfValues(ACTIONS),
      reason: str,
      confidence: num,
      urgency: oneOfValues(URGENCIES),
      keda_replicas: int,
      model: object({
        service_per_worker_per_min: num,
        required_for_arrivals: num,
        required_for_backlog: num,
        drain_time_s: nullable(num),
      }),
    }),
    totals: {
      ...object({
        completed: int,
        failed: int,
        errors: int,
        busy_ms: num,
        latency_count: int,
        latency_sum_ms: num,
        latency_ms: ref('Percentiles'),
      }),
      description:
        'Cumulative since the workers started, over every registered worker (the Prometheus counters and histogram _count/_sum).',
    },
  });
  const perCapability = (schema: Schema) => object(Object.fromEntries(CAPABILITIES.map((c) => [c.name, schema])));
  return {
    Percentiles: {
      ...object({ p50: nullable(num), p95: nullable(num), p99: nullable(num) }),
      description: 'Latency percentiles in ms, from the merged worker histograms (null: no task completed).',
    },
    CapabilityMetrics: capabilityMetrics,
    Snapshot: object(
      {
        timestamp: time,
        window_s: nullable(num),
        host: object({ cpu_percent: num, memory_percent: num, memory_used_mb: num }),
        capabilities: perCapability(ref('CapabilityMetrics')),
        live: {
          ...object({
            read_at: time,
            capabilities: perCapability(
              object({ queue_length: int, poison_length: int, oldest_message_age_s: nullable(num) }),
            ),
          }),
          description: 'The latest snapshot only (not with ?at=): the queues as read at the request.',
        },
      },
      ['live'],
    ),
    MetricsHistory: object({ minutes: num, count: int, snapshots: arrayOf(ref('Snapshot')) }),
    WorkerList: object({
      count: int,
      workers: arrayOf(
        object({
          id: str,
          host: str,
          capabilities: arrayOf(capabilityName),
          status: oneOfValues(WORKER_STATUSES),
          in_flight: int,
          processed: int,
          failed: int,
          started_at: time,
          last_heartbeat: time,
          recent_tasks: arrayOf(
            object({
              task_id: nullable(str),
              capability: capabilityName,
              outcome: oneOfValues(OUTCOMES),
              duration_ms: num,
              finished_at: time,
            }),
          ),
        }),
      ),
    }),
  };
}

function operationsSchemas(): Record<string, Schema> {
  const counted = (where: string) => object({ deleted: int, [where]: str });
  return {
    DeadLetters: object({
      capabilities: arrayOf(
        object({
          capability: capabilityName,
          poison_queue: str,
          waiting_in_poison_queue: int,
          poison_messages: arrayOf(
            object({
              id: str,
              text: str,
              encoding: oneOfValues(['base64', 'not_base64']),
              dequeue_count: int,
              inserted_at: nullable(time),
            }),
          ),
          count: int,
          dead_letters: arrayOf(
            object({
              capability: capabilityName,
              id: str,
              task_id: nullable(str),
              reason: str,
              message: str,
              dequeue_count: nullable(int),
              error: nullable(str),
              failed_at: time,
            }),
          ),
        }),
      ),
    }),
    RequeueResult: object({
      capability: capabilityName,
      queue: str,
      requeued: int,
      skipped: arrayOf(object({ id: str, reason: str })),
    }),
    PurgeReport: object({
      queued_messages: object({ deleted: int, queues: arrayOf(str) }),
      task_records: counted('table'),
      job_records: counted('table'),
      dead_letters: counted('table'),
      processed_results: counted('container'),
      kept: arrayOf(str),
    }),
  };
}

function catalogSchemas(): Record<string, Schema> {
  return {
    Health: object({
      status: oneOfValues(['ok', 'unavailable']),
      checks: object({
        blob: { type: 'string', description: '`ok` or `error: <why>`' },
        queue: str,
        table: str,
      }),
      version: str,
    }),
    FilterCatalog: object({
      filters: arrayOf(
        object({
          name: str,
          capability: capabilityName,
          description: str,
          params: {
            type: 'object',
            additionalProperties: object(
              {
                type: oneOfValues(['integer', 'number', 'enum', 'boolean', 'color']),
                description: str,
                required: bool,
                default: {},
                min: num,
                max: num,
                enum: arrayOf(str),
              },
              ['default', 'min', 'max', 'enum'],
            ),
          },
        }),
      ),
      capabilities: arrayOf(
        object({
          name: capabilityName,
          queue: str,
          poison_queue: str,
          description: str,
          scaling: object({ queueLength: num, activationQueueLength: num, minReplicas: int, maxReplicas: int }),
          filters: arrayOf(str),
        }),
      ),
    }),
    OpenApiDocument: {
      type: 'object',
      description: 'An OpenAPI 3.1 document (https://spec.openapis.org/oas/3.1/schema).',
      properties: {
        openapi: { type: 'string', pattern: '^3\\.1\\.\\d+$' },
        info: { type: 'object' },
        paths: { type: 'object' },
      },
      required: ['openapi', 'info', 'paths'],
    },
  };
}

/** Every schema of components.schemas. */
export function componentSchemas(settings: Settings): Record<string, Schema> {
  return {
    CapabilityName: capabilityName,
    ...problemSchemas(),
    ...pipelineSchemas(settings),
    ...taskSchemas(),
    ...imageSchemas(),
    ...metricsSchemas(),
    ...operationsSchemas(),
    ...catalogSchemas(),
  };
}
