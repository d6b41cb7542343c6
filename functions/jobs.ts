/**
 * POST /api/jobs (function key): JSON naming blobs, a raw image/* body, or multipart files →
 * one task record and one queue message per image → 202 + Location. Invalid input (an unknown
 * field or query parameter included) → 4xx problem+json and no task; the pipeline and every
 * uploaded file are checked before any upload is stored, under `<file name>-<12 hex>.<ext>`.
 * GET /api/jobs/{job_id} (function key): progress and tasks, each with its failure, source image and result links.
 * GET /api/jobs (function key): jobs newest first from the job index, `?status=&since=&limit=&continuation=`.
 * POST /api/jobs/{job_id}/retry (function key): the job's failed tasks back on their queue as new attempts. It
 * re-runs only what the job already asked for (the same key could submit the job again), so the function key.
 * DELETE /api/jobs/{job_id} (admin: the master key): the job's task records, results and index row; 409
 * while tasks are queued or processing unless `?force=true`. Destructive, so the operator's key.
 */
import { app } from '../shared/http/app';
import { jobActionRoutes } from '../shared/http/job-actions';
import { jobRoutes } from '../shared/http/jobs';
import { httpStorage } from '../shared/storage/clients';

const routes = jobRoutes(httpStorage);
const actions = jobActionRoutes(httpStorage);

app.http('submitJob', { route: 'jobs', methods: ['POST'], authLevel: 'function', handler: routes.submitJob });
app.http('getJob', { route: 'jobs/{job_id}', methods: ['GET'], authLevel: 'function', handler: routes.getJob });
app.http('listJobs', { route: 'jobs', methods: ['GET'], authLevel: 'function', handler: actions.listJobs });
app.http('retryJob', {
  route: 'jobs/{job_id}/retry',
  methods: ['POST'],
  authLevel: 'function',
  handler: actions.retryJob,
});
app.http('deleteJob', { route: 'jobs/{job_id}', methods: ['DELETE'], authLevel: 'admin', handler: actions.deleteJob });
