/**
 * POST /api/jobs in its three forms (JSON naming blobs, a raw image body, multipart files) and
 * GET /api/jobs/{job_id}. The pipeline is validated before anything is uploaded or enqueued.
 */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { AppError, ValidationError } from '../errors';
import { apiLimits } from '../config';
import type { Storage } from '../storage/clients';
import { createJob, summarizeJob } from '../tasks/jobs';
import { normalizeTaskSpec, type TaskSpec } from '../tasks/spec';
import { TaskStore, type TaskRecord } from '../tasks/store';
import { isPlainObject, problem as fieldProblem } from '../validation';
import { checkDeclaredLength, mediaType, parseFiltersField, parseJsonField, readBody, readJson } from './body';
import { imageExists, storeImage, validImageName } from './images';
import { handled, json } from './respond';

const ACCEPTED = 'application/json, image/* or multipart/form-data';
const JOB_ID = /^[0-9a-f-]{36}$/;

export const apiBase = (request: HttpRequest) => `${new URL(request.url).origin}/api`;

export function taskLinks(base: string, task: TaskRecord) {
  return { status_url: `${base}/tasks/${task.task_id}`, result_url: `${base}/tasks/${task.task_id}/result` };
}

function checkImageCount(count: number): void {
  if (count === 0) throw new ValidationError([fieldProblem('images', 'at least one image', [])]);
  if (count > apiLimits().maxImagesPerJob)
    throw new ValidationError([
      fieldProblem(
        'images',
        `at most ${apiLimits().maxImagesPerJob} images per job (MAX_IMAGES_PER_JOB)`,
        `${count} images`,
      ),
    ]);
}

/** JSON form: `images` names blobs in the images container; omitted means all of them. */
async function fromJson(request: HttpRequest, storage: Storage): Promise<{ images: string[]; spec: TaskSpec }> {
  const body = await readJson(request);
  if (!isPlainObject(body))
    throw new ValidationError([
      fieldProblem('body', 'a JSON object with filters, and optionally images, filter_params, output', body),
    ]);
  const spec = normalizeTaskSpec(body);
  let images: string[];
  if (body.images === undefined) {
    await storage.ensureResources();
    images = [];
    for await (const blob of storage.images.listBlobsFlat()) images.push(blob.name);
  } else {
    if (!Array.isArray(body.images))
      throw new ValidationError([fieldProblem('images', 'an array of image names', body.images)]);
    images = body.images.map((name, i) => validImageName(name, `images[${i}]`));
  }
  checkImageCount(images.length);
  const missing = (
    await Promise.all(images.map(async (name) => ((await imageExists(storage, name)) ? null : name)))
  ).filter((n): n is string => n !== null);
  if (missing.length) {
    throw new AppError(
      'image_not_found',
      `${missing.length} image(s) not in the ${storage.names.images} container: ${missing.slice(0, 10).join(', ')}`,
      {
        errors: missing.map((name) =>
          fieldProblem(`images[${images.indexOf(name)}]`, `an image in the ${storage.names.images} container`, name),
        ),
      },
    );
  }
  return { images, spec };
}

/** Raw form: the body is one image; the pipeline comes from the query string. */
async function fromRawImage(request: HttpRequest, storage: Storage): Promise<{ images: string[]; spec: TaskSpec }> {
  const q = request.query;
  const spec = normalizeTaskSpec({
    filters: parseFiltersField(q.get('filters')),
    filter_params: parseJsonField(q.get('filter_params'), 'filter_params'),
    output:
      q.get('format') || q.get('quality')
        ? { format: q.get('format') ?? undefined, quality: q.get('quality') ? Number(q.get('quality')) : undefined }
        : undefined,
  });
  const body = await readBody(request);
  if (body.length === 0) throw new ValidationError([fieldProblem('body', 'the image bytes', undefined)]);
  return { images: [(await storeImage(storage, body)).name], spec };
}

/** Multipart form: every file part is an image; fields filters, filter_params, output. */
async function fromMultipart(request: HttpRequest, storage: Storage): Promise<{ images: string[]; spec: TaskSpec }> {
  checkDeclaredLength(request);
  let form: FormData;
  try {
    form = await request.formData();
  } catch (err) {
    throw new ValidationError([
      fieldProblem('body', 'a well-formed multipart/form-data body', err instanceof Error ? err.message : String(err)),
    ]);
  }
  const field = (name: string) => {
    const value = form.get(name);
    return typeof value === 'string' ? value : null;
  };
  const spec = normalizeTaskSpec({
    filters: parseFiltersField(field('filters')),
    filter_params: parseJsonField(field('filter_params'), 'filter_params'),
    output: parseJsonField(field('output'), 'output'),
  });
  const files = [...form.values()].flatMap((v) => (typeof v === 'string' ? [] : [v]));
  checkImageCount(files.length);
  const images: string[] = [];
  for (const file of files) images.push((await storeImage(storage, Buffer.from(await file.arrayBuffer()))).name);
  return { images, spec };
}

export function jobRoutes(getStorage: () => Storage) {
  return {
    submitJob: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const storage = getStorage();
      const type = mediaType(request);
      const read =
        type === 'application/json'
          ? fromJson
          : type.startsWith('image/')
            ? fromRawImage
            : type === 'multipart/form-data'
              ? fromMultipart
              : undefined;
      if (!read)
        throw new AppError(
          'unsupported_media_type',
          `Expected Content-Type ${ACCEPTED} but received ${type || 'none'}`,
        );
      await storage.ensureResources();
      const { images, spec } = await read(request, storage);
      const job = await createJob(storage, images, spec);
      const base = apiBase(request);
      const statusUrl = `${base}/jobs/${job.job_id}`;
      return json(
        202,
        {
          job_id: job.job_id,
          status_url: statusUrl,
          tasks: job.tasks.map((t) => ({
            task_id: t.task_id,
            image: t.image,
            capability: t.capability,
            status: t.status,
            ...taskLinks(base, t),
          })),
        },
        { location: statusUrl },
      );
    }),

    getJob: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const jobId = request.params.job_id;
      if (!JOB_ID.test(jobId ?? '')) throw new ValidationError([fieldProblem('job_id', 'a job id (UUID)', jobId)]);
      const storage = getStorage();
      await storage.ensureResources();
      const tasks = await new TaskStore(storage.tasks).listJob(jobId);
      if (tasks.length === 0) throw new AppError('not_found', `No job ${jobId}`);
      const base = apiBase(request);
      const summary = summarizeJob(jobId, tasks);
      return json(200, { ...summary, tasks: summary.tasks.map((t) => ({ ...t, ...taskLinks(base, t) })) });
    }),
  };
}
