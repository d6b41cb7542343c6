/**
 * POST /api/jobs (function key): JSON naming blobs, a raw image/* body, or multipart files →
 * one task record and one queue message per image → 202 + Location. Invalid input (an unknown
 * field or query parameter included) → 4xx problem+json and no task; the pipeline and every
 * uploaded file are checked before any upload is stored, under `<file name>-<12 hex>.<ext>`.
 * GET /api/jobs/{job_id} (function key): progress and tasks.
 */
import { app } from '../shared/http/app';
import { jobRoutes } from '../shared/http/jobs';
import { httpStorage } from '../shared/storage/clients';

const routes = jobRoutes(httpStorage);

app.http('submitJob', { route: 'jobs', methods: ['POST'], authLevel: 'function', handler: routes.submitJob });
app.http('getJob', { route: 'jobs/{job_id}', methods: ['GET'], authLevel: 'function', handler: routes.getJob });
