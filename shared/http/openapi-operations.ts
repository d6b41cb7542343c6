/**
 * What each HTTP function means to a client, by function name: summary, parameters, request body and
 * every response it can give. The method, route and key it takes come from the registration itself
 * (shared/http/app.ts); the document holds one operation per registered route and method that has an
 * entry here, and tests/functions/openapi.test.ts fails for a route without one. Adding a route: one
 * entry here (with a schema in openapi-schemas.ts when its answer has a new shape).
 */
import { OUTPUT_FORMATS } from '../imaging/output';
import { type Schema, ref, problemSchemaName } from './openapi-schemas';

export interface ResponseSpec {
  readonly description: string;
  /** Media type → schema (`{}` when the body is bytes); absent: no body. */
  readonly content?: Readonly<Record<string, Schema>>;
  readonly headers?: Readonly<Record<string, Schema>>;
}

export interface ParameterSpec {
  readonly name: string;
  readonly in: 'path' | 'query' | 'header';
  readonly description: string;
  readonly required?: boolean;
  readonly schema: Schema;
}

export interface OperationSpec {
  readonly summary: string;
  readonly description?: string;
  readonly tag: string;
  /** Path parameters' schemas by name; a template parameter not listed is a plain string. */
  readonly path?: Readonly<Record<string, { readonly description: string; readonly schema: Schema }>>;
  readonly parameters?: readonly ParameterSpec[];
  readonly requestBody?: { readonly description: string; readonly content: Readonly<Record<string, Schema>> };
  readonly responses: Readonly<Record<string, ResponseSpec>>;
  /** It reads or writes storage: 503 storage_unavailable with Retry-After when storage does not answer. */
  readonly storage: boolean;
}

const header = (description: string, schema: Schema = { type: 'string' }): Schema => ({ description, schema });
export const jsonBody = (schema: string, description: string, headers?: Record<string, Schema>): ResponseSpec => ({
  description,
  content: { 'application/json': ref(schema) },
  ...(headers ? { headers } : {}),
});
/** A problem+json answer whose `type` may be any code of that status. */
export const problem = (status: number, description: string): ResponseSpec => ({
  description,
  content: { 'application/problem+json': ref(problemSchemaName(status)) },
});
const bytes = (mediaRange: string, description: string, headers?: Record<string, Schema>): ResponseSpec => ({
  description,
  content: { [mediaRange]: {} },
  ...(headers ? { headers } : {}),
});
const location = (what: string) => ({ Location: header(what, { type: 'string', format: 'uri-reference' }) });
const etag = { ETag: header('The entity tag of this version.') };
const CACHED = { ETag: header('The file version; send it as If-None-Match.'), 'Cache-Control': header('Caching.') };
const notModified: ResponseSpec = { description: 'If-None-Match named the current version.', headers: CACHED };

const JOB_ID = { description: 'The job id (a UUID).', schema: { type: 'string', format: 'uuid' } };
const TASK_ID = {
  description: 'The task id: `<job id>_<index>`.',
  schema: { type: 'string', pattern: '^[0-9a-f-]{36}_\\d{4,}$' },
};
const IMAGE_NAME = {
  description: 'A blob name: letters, digits, `.`, `_`, `-`.',
  schema: { type: 'string', pattern: '^(?!\\.)(?!.*\\.\\.)[A-Za-z0-9._-]{1,200}$' },
};
const badRequest = problem(
  400,
  'A parameter is not valid: the problem names it, what was expected and what was received.',
);
const notFound = (what: string) => problem(404, `No such ${what}.`);

export const OPERATIONS: Readonly<Record<string, OperationSpec>> = {
  health: {
    tag: 'service',
    summary: 'Storage probes (blob, queue, table) and the app version',
    storage: false,
    responses: {
      '200': jsonBody('Health', 'Every storage probe answered.'),
      '503': jsonBody('Health', 'A storage probe failed or did not answer in time; `checks` says which.'),
    },
  },
  filters: {
    tag: 'service',
    summary: 'The filter catalog (every parameter with its type, range and default) and the capability table',
    storage: false,
    responses: { '200': jsonBody('FilterCatalog', 'The catalog.') },
  },
  openapi: {
    tag: 'service',
    summary: 'This document: the OpenAPI 3.1 description of the API',
    storage: false,
    responses: { '200': jsonBody('OpenApiDocument', 'The document, its server the origin the request reached.') },
  },
  submitJob: {
    tag: 'jobs',
    summary: 'Submit a job: one task per image, each running the whole filter pipeline',
    description:
      'Three forms: JSON naming images already in the images container; a raw `image/*` body with the pipeline in the query; ' +
      'multipart files. The pipeline and every uploaded file are checked before anything is stored or enqueued.',
    storage: true,
    parameters: [
      {
        name: 'filters',
        in: 'query',
        description: 'Raw form: comma-separated filter names or a JSON array.',
        schema: { type: 'string' },
      },
      { name: 'filter_params', in: 'query', description: 'Raw form: JSON FilterParams.', schema: { type: 'string' } },
      {
        name: 'format',
        in: 'query',
        description: 'Raw form: output format.',
        schema: { type: 'string', enum: [...OUTPUT_FORMATS] },
      },
      {
        name: 'quality',
        in: 'query',
        description: 'Raw form: output quality 1-100.',
        schema: { type: 'integer', minimum: 1, maximum: 100 },
      },
      {
        name: 'name',
        in: 'query',
        description: 'Raw form: the file name the upload is stored after.',
        schema: { type: 'string' },
      },
      { name: 'callback_url', in: 'query', description: 'Raw form: CallbackUrl.', schema: ref('CallbackUrl') },
    ],
    requestBody: {
      description: 'The job.',
      content: {
        'application/json': ref('SubmitJobRequest'),
        'image/*': {},
        'multipart/form-data': ref('SubmitJobForm'),
      },
    },
    responses: {
      '202': jsonBody('JobSubmitted', 'Accepted: the tasks are queued.', location('The job status URL.')),
      '400': problem(400, 'The request or its pipeline is not valid; `errors` lists every problem.'),
      '404': problem(404, 'A named image is not in the images container.'),
      '413': problem(413, 'The body or an image is too large.'),
      '415': problem(415, 'The content type or an uploaded file is not accepted.'),
      '422': problem(422, 'An uploaded image is corrupt, or the pipeline cannot apply to it.'),
    },
  },
  getJob: {
    tag: 'jobs',
    summary: 'Job progress: counts per status, the overall status and every task',
    storage: true,
    path: { job_id: JOB_ID },
    responses: { '200': jsonBody('Job', 'The job.'), '400': badRequest, '404': notFound('job') },
  },
  listJobs: {
    tag: 'jobs',
    summary:
      'Jobs newest first from the job index, paged: a page with ?status= may hold fewer than limit jobs and still continue',
    storage: true,
    parameters: [
      {
        name: 'status',
        in: 'query',
        description: 'Only jobs in this status.',
        schema: { type: 'string', enum: ['queued', 'processing', 'succeeded', 'failed', 'partially_failed'] },
      },
      {
        name: 'since',
        in: 'query',
        description: 'Only jobs created at or after this instant (ISO 8601).',
        schema: { type: 'string', format: 'date-time' },
      },
      {
        name: 'limit',
        in: 'query',
        description: 'Most jobs in the page.',
        schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
      },
      {
        name: 'continuation',
        in: 'query',
        description: "The previous page's continuation (opaque).",
        schema: { type: 'string', maxLength: 512 },
      },
    ],
    responses: { '200': jsonBody('JobList', 'A page of jobs.'), '400': badRequest },
  },
  retryJob: {
    tag: 'jobs',
    summary: "Put the job's failed tasks back on their queue as a new attempt of the same task ids",
    storage: true,
    path: { job_id: JOB_ID },
    responses: {
      '200': jsonBody('JobRetried', 'What was requeued (none when nothing failed: safe to repeat).'),
      '400': badRequest,
      '404': notFound('job'),
    },
  },
  deleteJob: {
    tag: 'jobs',
    summary: "Delete the job's task records, results, index row, dead letters and callback (source images stay)",
    storage: true,
    path: { job_id: JOB_ID },
    parameters: [
      {
        name: 'force',
        in: 'query',
        description: 'true: delete even while tasks are queued or processing (their messages end as dead letters).',
        schema: { type: 'string', enum: ['true', 'false'] },
      },
    ],
    responses: {
      '200': jsonBody('JobDeleted', 'What was deleted.'),
      '400': badRequest,
      '404': notFound('job'),
      '409': problem(409, 'The job still has tasks queued or processing (job_active); ?force=true deletes anyway.'),
    },
  },
  getTask: {
    tag: 'tasks',
    summary: 'A task record (a queued task says how many messages are ahead; a running one who holds it)',
    storage: true,
    path: { task_id: TASK_ID },
    responses: { '200': jsonBody('Task', 'The task.'), '400': badRequest, '404': notFound('task') },
  },
  getTaskResult: {
    tag: 'tasks',
    summary: "A task's result: a redirect to a short-lived read-only link, or the bytes with ?download=stream",
    storage: true,
    path: { task_id: TASK_ID },
    parameters: [
      {
        name: 'download',
        in: 'query',
        description: '`stream`: the bytes through the function; absent: a 302 to a short-lived link.',
        schema: { type: 'string', enum: ['stream'] },
      },
    ],
    responses: {
      '200': bytes('image/*', 'The result image.', { 'Content-Length': header('Bytes.', { type: 'integer' }) }),
      '302': { description: 'A short-lived read-only link to the result.', headers: location('The link.') },
      '400': badRequest,
      '404': notFound('task'),
      '409': problem(409, 'The task has not succeeded (yet): the problem says its status and why.'),
    },
  },
  listImages: {
    tag: 'images',
    summary: 'The images in the images container',
    storage: true,
    responses: { '200': jsonBody('ImageList', 'The images.') },
  },
  putImage: {
    tag: 'images',
    summary: 'Upload an image (whole and accepted images only); never replaces unless asked',
    storage: true,
    path: { name: IMAGE_NAME },
    parameters: [
      {
        name: 'overwrite',
        in: 'query',
        description: '`true` replaces an existing image.',
        schema: { type: 'string', enum: ['true', 'false'] },
      },
      { name: 'If-Match', in: 'header', description: 'Replace only this version.', schema: { type: 'string' } },
      {
        name: 'If-None-Match',
        in: 'header',
        description: '`*`: create only.',
        schema: { type: 'string', enum: ['*'] },
      },
    ],
    requestBody: { description: 'The image bytes.', content: { 'image/*': {}, 'application/octet-stream': {} } },
    responses: {
      '200': jsonBody('StoredImage', 'Replaced.', { ...location('The image URL.'), ...etag }),
      '201': jsonBody('StoredImage', 'Created.', { ...location('The image URL.'), ...etag }),
      '400': badRequest,
      '409': problem(409, 'An image with this name exists (send ?overwrite=true to replace it).'),
      '412': problem(412, 'If-Match named another version.'),
      '413': problem(413, 'The body or the image is too large.'),
      '415': problem(415, 'Not an accepted image.'),
      '422': problem(422, 'The image is corrupt or truncated.'),
    },
  },
  getImage: {
    tag: 'images',
    summary: 'The image bytes',
    storage: true,
    path: { name: IMAGE_NAME },
    responses: { '200': bytes('image/*', 'The image.'), '400': badRequest, '404': notFound('image') },
  },
  getImageInfo: {
    tag: 'images',
    summary: "An image's metadata: size, format, bands, colour space, alpha, orientation",
    storage: true,
    path: { name: IMAGE_NAME },
    responses: {
      '200': jsonBody('ImageInfo', 'The metadata.'),
      '400': badRequest,
      '404': notFound('image'),
      '415': problem(415, 'The stored blob is not a supported image.'),
      '422': problem(422, 'The stored image is corrupt.'),
    },
  },
  deleteImage: {
    tag: 'images',
    summary: 'Delete an image (results made from it are kept)',
    storage: true,
    path: { name: IMAGE_NAME },
    responses: { '204': { description: 'Deleted.' }, '400': badRequest, '404': notFound('image') },
  },
  metrics: {
    tag: 'metrics',
    summary:
      'The latest metrics snapshot (every figure of its timestamp) plus the queues read now (live); ?at= a kept snapshot; ?format=prometheus for the text exposition',
    storage: true,
    parameters: [
      {
        name: 'format',
        in: 'query',
        description: 'json (default) or prometheus.',
        schema: { type: 'string', enum: ['json', 'prometheus'], default: 'json' },
      },
      {
        name: 'at',
        in: 'query',
        description:
          "A snapshot's timestamp (its JSON `timestamp`): that snapshot, while METRICS_RETENTION_MINUTES keeps it.",
        schema: { type: 'string', format: 'date-time' },
      },
    ],
    responses: {
      '200': {
        description: 'The snapshot (JSON), or the Prometheus text exposition format 0.0.4.',
        content: { 'application/json': ref('Snapshot'), 'text/plain': { type: 'string' } },
      },
      '400': badRequest,
      '404': notFound('snapshot at that timestamp (never taken, or no longer kept)'),
    },
  },
  metricsHistory: {
    tag: 'metrics',
    summary: 'Snapshots of the last N minutes, oldest first',
    storage: true,
    parameters: [
      {
        name: 'minutes',
        in: 'query',
        description: 'How far back (above 0, at most METRICS_RETENTION_MINUTES).',
        schema: { type: 'number', exclusiveMinimum: 0, default: 15 },
      },
    ],
    responses: { '200': jsonBody('MetricsHistory', 'The snapshots.'), '400': badRequest },
  },
  workers: {
    tag: 'metrics',
    summary: 'The worker registry: status, in-flight tasks, counters, recent tasks',
    storage: true,
    responses: { '200': jsonBody('WorkerList', 'The workers.') },
  },
  deadLetters: {
    tag: 'dead letters',
    summary: 'Dead letters and poison-queue messages per capability',
    storage: true,
    responses: { '200': jsonBody('DeadLetters', 'Per capability.') },
  },
  requeueDeadLetters: {
    tag: 'dead letters',
    summary: "Put a capability's dead letters back on its queue (their tasks back to queued)",
    storage: true,
    path: { capability: { description: 'A capability name.', schema: ref('CapabilityName') } },
    responses: {
      '200': jsonBody('RequeueResult', 'What was requeued and what was skipped.'),
      '400': badRequest,
      '404': problem(404, 'The capability has no dead letters.'),
    },
  },
  requeueDeadLetter: {
    tag: 'dead letters',
    summary: 'Put one dead letter back on its queue (its task back to queued)',
    storage: true,
    path: {
      capability: { description: 'A capability name.', schema: ref('CapabilityName') },
      id: {
        description: "The dead letter's id, as GET /api/dead-letters lists it.",
        schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,200}$' },
      },
    },
    responses: {
      '200': jsonBody('RequeueResult', 'The letter was requeued (requeued: 1).'),
      '400': badRequest,
      '404': problem(404, 'No such dead letter (already requeued, or never recorded).'),
      '409': problem(409, "The letter's task is not failed (dead_letter_task_not_failed); the letter stays."),
      '422': problem(
        422,
        'The letter is not a valid task message or names no task (dead_letter_not_replayable); it stays.',
      ),
    },
  },
  purgeTasks: {
    tag: 'admin',
    summary: 'Forget every task: queued messages, task records, dead letters and results (images and metrics stay)',
    storage: true,
    responses: { '200': jsonBody('PurgeReport', 'What was deleted.') },
  },
  dashboard: {
    tag: 'dashboard',
    summary: 'The live dashboard page (it asks for the function key in the browser)',
    storage: false,
    responses: {
      '200': bytes('text/html', 'The page.', CACHED),
      '304': notModified,
      '308': { description: 'The path had a trailing slash.', headers: location('The path without it.') },
    },
  },
  dashboardAssets: {
    tag: 'dashboard',
    summary: "The dashboard's script, stylesheet and Chart.js",
    storage: false,
    path: { file: { description: 'An asset name from the allow-list.', schema: { type: 'string' } } },
    responses: {
      '200': {
        description: 'The file.',
        content: { 'text/javascript': {}, 'text/css': {}, 'application/json': {} },
        headers: CACHED,
      },
      '304': notModified,
      '404': notFound('asset'),
    },
  },
};
