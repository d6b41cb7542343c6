/**
 * POST /api/jobs in its three forms (JSON naming blobs, a raw image body, multipart files) and
 * GET /api/jobs/{job_id}. The pipeline is validated before anything is uploaded or enqueued.
 */
import { randomUUID } from 'node:crypto';
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { checkCallbackUrl, type Resolver } from '../callback-url';
import { appSettings, type Settings } from '../config';
import { AppError, MAX_REPORTED_PROBLEMS, ValidationError } from '../errors';
import { normalizeTaskSpec, type TaskSpec } from '../imaging/spec';
import type { Storage } from '../storage/clients';
import { checkedUpload, listImages, missingImages, storeUploads, validImageName } from '../storage/images';
import { callbackView, getCallback, registerCallback } from '../tasks/callbacks';
import { createJob, summarizeJob } from '../tasks/jobs';
import { isResultExpired } from '../tasks/retention';
import { TaskStore, type TaskRecord } from '../tasks/store';
import { fieldProblem, isPlainObject, shownKey, unknownKeyProblems } from '../validation';
import { mediaType, parseFiltersField, parseJsonField, readBody, readForm, readJson } from './body';
import { handled, json } from './respond';

const ACCEPTED = 'application/json, image/* or multipart/form-data';
const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * A job id as a caller may write it: a UUID (8-4-4-4-12 hex digits) in any case, since UUIDs compare without
 * case (RFC 9562 §4); answered in lower case, as createJob writes it, or undefined.
 */
export function jobIdOf(value: string | undefined): string | undefined {
  const id = value?.toLowerCase();
  return id !== undefined && JOB_ID.test(id) ? id : undefined;
}

export const apiBase = (request: HttpRequest) => `${new URL(request.url).origin}/api`;

/**
 * A task's links: result_url is the result's own short-lived read-only link once the task has
 * succeeded (from `results`, by task id), else the result route (409 until done, then a 302 to such a link).
 */
export function taskLinks(base: string, task: TaskRecord, results?: ReadonlyMap<string, string>) {
  return {
    status_url: `${base}/tasks/${task.task_id}`,
    result_url: results?.get(task.task_id) ?? `${base}/tasks/${task.task_id}/result`,
  };
}

/** Result links of the succeeded tasks among `tasks`, by task id (signed locally: no storage round trip per link). */
export async function resultLinksOf(
  storage: Storage,
  tasks: readonly TaskRecord[],
  settings: Settings,
): Promise<Map<string, string>> {
  const now = new Date();
  // an expired result gets no link: result_url stays the result route, which answers 410
  const done = tasks.filter((t) => t.status === 'succeeded' && t.output && !isResultExpired(t, settings, now));
  if (done.length === 0 || !storage.results.canSign) return new Map();
  const link = async (t: TaskRecord) =>
    [t.task_id, (await storage.results.link(t.output!.blob, settings.resultLinkTtlSeconds, now)).url] as const;
  // without a link (no user delegation key: storage down, or the identity lacks the role) result_url
  // stays the result route, which reports why
  return new Map(await Promise.all(done.map(link)).catch(() => []));
}

interface Submission {
  readonly request: HttpRequest;
  readonly storage: Storage;
  readonly settings: Settings;
  readonly resolve?: Resolver;
}

interface SubmittedWork {
  readonly images: string[];
  readonly spec: TaskSpec;
  /** Where to POST the completion event, checked (shape and resolved addresses). */
  readonly callbackUrl?: string;
}

/**
 * A submitted callback_url, checked before anything is stored: refused without CALLBACK_SECRET (events are
 * never sent unsigned), and unless it is https and resolves to public addresses only (callback-url.ts).
 */
async function checkedCallback(
  raw: unknown,
  { settings, resolve }: Pick<Submission, 'settings' | 'resolve'>,
): Promise<string | undefined> {
  if (raw === undefined || raw === null) return undefined;
  if (!settings.callbackSecret) {
    throw new AppError(
      'callbacks_not_configured',
      'Expected no callback_url: this deployment has no CALLBACK_SECRET to sign completion events with, so it sends none; submit without callback_url and poll status_url, or ask the operator to set CALLBACK_SECRET',
    );
  }
  const checked = await checkCallbackUrl(raw, { allowPrivate: settings.callbackAllowPrivate === 'true', resolve });
  if (!(checked instanceof URL)) throw new ValidationError([checked]);
  return checked.href;
}

function checkImageCount(count: number, settings: Settings): void {
  if (count === 0) throw new ValidationError([fieldProblem('images', 'at least one image', [])]);
  if (count > settings.maxImagesPerJob) {
    const expected = `at most ${settings.maxImagesPerJob} images per job (MAX_IMAGES_PER_JOB)`;
    const received = `${count} images`;
    throw new ValidationError([
      { field: 'images', expected, received, message: `Expected ${expected} for images but received ${received}` },
    ]);
  }
}

/** Fields the JSON form takes; anything else is refused by name, with the closest known one. */
const JSON_FIELDS = ['images', 'filters', 'filter_params', 'output', 'callback_url'];
/** Query parameters of the raw form; `code` is the function key the Functions host reads from the query. */
const RAW_QUERY = ['filters', 'filter_params', 'format', 'quality', 'name', 'callback_url', 'code'];
/** Text fields of the multipart form (file parts may have any field name). */
const FORM_FIELDS = ['filters', 'filter_params', 'output', 'callback_url'];

function refuseUnknown(
  keys: readonly string[],
  known: readonly string[],
  fieldOf: (k: string) => string,
  what: string,
) {
  const problems = unknownKeyProblems(keys, known, fieldOf, what);
  if (problems.length) throw new ValidationError(problems);
}

/** JSON form: `images` names blobs in the images container; omitted means all of them. */
async function fromJson({ request, storage, settings, resolve }: Submission): Promise<SubmittedWork> {
  const body = await readJson(request, settings.maxBodyBytes);
  if (!isPlainObject(body)) {
    const expected = 'a JSON object with filters, and optionally images, filter_params, output';
    throw new ValidationError([fieldProblem('body', expected, body)]);
  }
  refuseUnknown(Object.keys(body), JSON_FIELDS, (key) => key, 'field');
  // an over-long list is refused before its names are looked at
  if (Array.isArray(body.images) && body.images.length > settings.maxImagesPerJob)
    checkImageCount(body.images.length, settings);
  const spec = normalizeTaskSpec(body, settings);
  const callbackUrl = await checkedCallback(body.callback_url, { settings, resolve });
  let images: string[];
  if (body.images === undefined) {
    images = (await listImages(storage)).map((image) => image.name);
  } else {
    if (!Array.isArray(body.images)) {
      throw new ValidationError([fieldProblem('images', 'an array of image names', body.images)]);
    }
    images = body.images.map((name, i) => validImageName(name, `images[${i}]`));
  }
  checkImageCount(images.length, settings);
  const missing = await missingImages(storage, images);
  if (missing.length) {
    const container = storage.names.images;
    throw new AppError(
      'image_not_found',
      `${missing.length} image(s) not in the ${container} container: ${missing.slice(0, 10).join(', ')}`,
      {
        errors: missing
          .slice(0, MAX_REPORTED_PROBLEMS)
          .map((name) =>
            fieldProblem(`images[${images.indexOf(name)}]`, `an image in the ${container} container`, name),
          ),
      },
    );
  }
  return { images, spec, callbackUrl };
}

/**
 * The file name a raw upload is stored after: `?name=`, else the Content-Disposition filename
 * (RFC 6266: `filename*=UTF-8''<percent-encoded>` preferred over `filename=`).
 */
function rawFilename(request: HttpRequest): string | undefined {
  const named = request.query.get('name');
  if (named) return named.slice(0, 1000);
  const disposition = (request.headers.get('content-disposition') ?? '').slice(0, 4000);
  const extended = /filename\*=[\w-]*'[^']*'([^;\s]{1,1000})/i.exec(disposition)?.[1];
  if (extended) {
    try {
      return decodeURIComponent(extended);
    } catch {
      return extended;
    }
  }
  return /filename="?([^";]{1,1000})/i.exec(disposition)?.[1];
}

/** Raw form: the body is one image; the pipeline comes from the query string. */
async function fromRawImage({ request, storage, settings, resolve }: Submission): Promise<SubmittedWork> {
  const q = request.query;
  refuseUnknown([...new Set(q.keys())], RAW_QUERY, (key) => `query.${key}`, 'query parameter');
  const format = q.get('format');
  const quality = q.get('quality');
  const spec = normalizeTaskSpec(
    {
      filters: parseFiltersField(q.get('filters')),
      filter_params: parseJsonField(q.get('filter_params'), 'filter_params'),
      output:
        format || quality
          ? { format: format?.slice(0, 100) ?? undefined, quality: quality ? Number(quality) : undefined }
          : undefined,
    },
    settings,
  );
  const callbackUrl = await checkedCallback(q.get('callback_url') ?? undefined, { settings, resolve });
  const body = await readBody(request, settings.maxBodyBytes);
  if (body.length === 0) throw new ValidationError([fieldProblem('body', 'the image bytes', undefined)]);
  const upload = await checkedUpload(body, settings, { filename: rawFilename(request) });
  const [stored] = await storeUploads(storage, [upload]);
  return { images: [stored.name], spec, callbackUrl };
}

/** Multipart form: every file part is an image; fields filters, filter_params, output. */
async function fromMultipart({ request, storage, settings, resolve }: Submission): Promise<SubmittedWork> {
  const form = await readForm(request, settings.maxBodyBytes);
  const entries = [...form.entries()];
  const textFields = entries.flatMap(([key, value]) => (typeof value === 'string' ? [key] : []));
  refuseUnknown([...new Set(textFields)], FORM_FIELDS, (key) => `form.${key}`, 'form field');
  const field = (name: string) => {
    const value = form.get(name);
    return typeof value === 'string' ? value : null;
  };
  const spec = normalizeTaskSpec(
    {
      filters: parseFiltersField(field('filters')),
      filter_params: parseJsonField(field('filter_params'), 'filter_params'),
      output: parseJsonField(field('output'), 'output'),
    },
    settings,
  );
  const callbackUrl = await checkedCallback(field('callback_url') ?? undefined, { settings, resolve });
  const files = entries.flatMap(([, v]) => (typeof v === 'string' ? [] : [v]));
  checkImageCount(files.length, settings);
  // every part is checked before any is stored: a refused part leaves nothing behind
  const uploads = [];
  for (const [i, file] of files.entries()) {
    try {
      uploads.push(await checkedUpload(Buffer.from(await file.arrayBuffer()), settings, { filename: file.name }));
    } catch (err) {
      if (!(err instanceof AppError) || err instanceof ValidationError) throw err;
      const part = `File part ${i + 1} of ${files.length} ('${shownKey(file.name)}')`;
      throw new AppError(err.code, `${part}: ${err.message}; nothing was stored`, { errors: err.errors, cause: err });
    }
  }
  const stored = await storeUploads(storage, uploads);
  return { images: stored.map((s) => s.name), spec, callbackUrl };
}

const READERS: ReadonlyArray<[(mediaType: string) => boolean, (s: Submission) => Promise<SubmittedWork>]> = [
  [(type) => type === 'application/json', fromJson],
  [(type) => type.startsWith('image/'), fromRawImage],
  [(type) => type === 'multipart/form-data', fromMultipart],
];

/** `resolve`: how callback URL hosts are resolved (tests inject one; DNS otherwise). */
export function jobRoutes(
  getStorage: () => Storage,
  settings: Settings = appSettings(),
  options: { readonly resolve?: Resolver } = {},
) {
  return {
    submitJob: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const storage = getStorage();
      const type = mediaType(request);
      const read = READERS.find(([accepts]) => accepts(type))?.[1];
      if (!read) {
        throw new AppError(
          'unsupported_media_type',
          `Expected Content-Type ${ACCEPTED} but received ${type || 'none'}`,
        );
      }
      await storage.ensureResources();
      const { images, spec, callbackUrl } = await read({ request, storage, settings, resolve: options.resolve });
      const base = apiBase(request);
      const jobId = randomUUID();
      const now = new Date();
      if (callbackUrl) await registerCallback(storage, jobId, callbackUrl, base, now);
      const job = await createJob(storage, images, spec, now, jobId);
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
          ...(callbackUrl ? { callback: { url: callbackUrl, state: 'pending' } } : {}),
        },
        { location: statusUrl },
      );
    }),

    getJob: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const jobId = jobIdOf(request.params.job_id);
      if (!jobId) throw new ValidationError([fieldProblem('job_id', 'a job id (UUID)', request.params.job_id)]);
      const storage = getStorage();
      await storage.ensureResources();
      const [tasks, callback] = await Promise.all([
        new TaskStore(storage.tasks).listJob(jobId),
        getCallback(storage, jobId),
      ]);
      if (tasks.length === 0) throw new AppError('not_found', `No job ${jobId}`);
      const base = apiBase(request);
      const summary = summarizeJob(jobId, tasks);
      const links = await resultLinksOf(storage, tasks, settings);
      // each task with its source image's link beside its result's: what a failed task read is one click away
      const image = (t: TaskRecord) => ({ image_url: `${base}/images/${encodeURIComponent(t.image)}` });
      return json(200, {
        ...summary,
        tasks: summary.tasks.map((t) => ({ ...t, ...image(t), ...taskLinks(base, t, links) })),
        ...(callback ? { callback: callbackView(callback, settings) } : {}),
      });
    }),
  };
}
