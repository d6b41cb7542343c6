/**
 * GET /api/jobs (newest first, paged), POST /api/jobs/{job_id}/retry and DELETE /api/jobs/{job_id}.
 * Every query parameter is checked, and all problems are reported at once.
 */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { AppError, ValidationError, type FieldProblem } from '../errors';
import type { Storage } from '../storage/clients';
import { decodeCursor, JOB_STATUSES } from '../tasks/job-index';
import { deleteJob, listJobs, retryJob, type ListQuery } from '../tasks/job-actions';
import type { JobStatus } from '../tasks/jobs';
import { fieldProblem, unknownKeyProblems } from '../validation';
import { apiBase, jobIdOf } from './jobs';
import { handled, json } from './respond';

export const DEFAULT_LIMIT = 20;
export const MAX_LIMIT = 100;

/** Query parameters of GET /api/jobs; `code` is the function key the Functions host reads from the query. */
const LIST_QUERY = ['status', 'since', 'limit', 'continuation', 'code'];
/** An ISO 8601 date, or date and time with a zone (what Date.parse reads the same everywhere). */
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(T(\d{2}):(\d{2})(:(\d{2})(\.\d{1,9})?)?(Z|[+-](\d{2}):(\d{2})))?$/;

/**
 * The time `text` names, or undefined when it is not ISO 8601 or names no real time: Date.parse rolls
 * 2026-02-30 over to March 2 and takes hour 24, so each field is checked against the calendar.
 */
export function isoTime(text: string): Date | undefined {
  const m = ISO_TIME.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second, offsetHour, offsetMinute] = [1, 2, 3, 5, 6, 8, 11, 12].map((i) =>
    Number(m[i] ?? 0),
  );
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const real =
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysInMonth &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 59 &&
    offsetHour <= 23 &&
    offsetMinute <= 59;
  const at = new Date(text);
  return real && !Number.isNaN(at.getTime()) ? at : undefined;
}

/** One problem per parameter of `names` given more than once: which value counts would be a guess. */
function repeatedProblems(query: URLSearchParams, names: readonly string[]): FieldProblem[] {
  return names.flatMap((name) => {
    const values = query.getAll(name);
    if (values.length < 2) return [];
    const shown = values.slice(0, 3).map((v) => `'${v.length > 40 ? `${v.slice(0, 40)}…` : v}'`);
    const received = `${values.length} values: ${shown.join(', ')}${values.length > 3 ? ', …' : ''}`;
    const expected = 'one value (the parameter once)';
    return [
      {
        field: `query.${name}`,
        expected,
        received,
        message: `Expected ${expected} for query.${name} but received ${received}`,
      },
    ];
  });
}

function collect(problems: FieldProblem[], check: () => void): void {
  try {
    check();
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    problems.push(...err.errors);
  }
}

/** The listing's query, or one ValidationError naming every parameter that is wrong and what it takes. */
export function parseListQuery(query: URLSearchParams): ListQuery {
  const problems = unknownKeyProblems([...new Set(query.keys())], LIST_QUERY, (k) => `query.${k}`, 'query parameter');
  problems.push(...repeatedProblems(query, ['status', 'since', 'limit', 'continuation']));
  const status = query.get('status') ?? undefined;
  if (status !== undefined && !JOB_STATUSES.includes(status as JobStatus))
    problems.push(fieldProblem('query.status', `one of ${JOB_STATUSES.join(', ')}`, status));
  const sinceText = query.get('since') ?? undefined;
  const since = sinceText === undefined ? undefined : isoTime(sinceText);
  if (sinceText !== undefined && since === undefined)
    problems.push(fieldProblem('query.since', 'an ISO 8601 time such as 2026-01-31T08:00:00Z', sinceText));
  const limitText = query.get('limit') ?? undefined;
  const limit = limitText === undefined ? DEFAULT_LIMIT : Number(limitText);
  if (limitText !== undefined && !(/^\d{1,3}$/.test(limitText) && limit >= 1 && limit <= MAX_LIMIT))
    problems.push(fieldProblem('query.limit', `an integer between 1 and ${MAX_LIMIT}`, limitText));
  const token = query.get('continuation') ?? undefined;
  let after: ListQuery['after'];
  if (token !== undefined) collect(problems, () => (after = decodeCursor(token)));
  if (problems.length > 0) throw new ValidationError(problems);
  return {
    limit,
    ...(status ? { status: status as JobStatus } : {}),
    ...(since ? { since } : {}),
    ...(after ? { after } : {}),
  };
}

function jobIdParam(request: HttpRequest): string {
  const jobId = jobIdOf(request.params.job_id);
  if (!jobId) throw new ValidationError([fieldProblem('job_id', 'a job id (UUID)', request.params.job_id)]);
  return jobId;
}

/** `?force=`: absent or `false` (refuse a job still running) or `true`. */
function forceParam(request: HttpRequest): boolean {
  const problems = unknownKeyProblems(
    [...new Set(request.query.keys())],
    ['force', 'code'],
    (k) => `query.${k}`,
    'query parameter',
  );
  problems.push(...repeatedProblems(request.query, ['force']));
  const force = request.query.get('force');
  if (force !== null && force !== 'true' && force !== 'false')
    problems.push(fieldProblem('query.force', "'true' or 'false'", force));
  if (problems.length > 0) throw new ValidationError(problems);
  return force === 'true';
}

export function jobActionRoutes(getStorage: () => Storage) {
  return {
    listJobs: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const query = parseListQuery(request.query);
      const storage = getStorage();
      await storage.ensureResources();
      const page = await listJobs(storage, query);
      const base = apiBase(request);
      let nextUrl: string | null = null;
      if (page.continuation) {
        const next = new URLSearchParams();
        if (query.status) next.set('status', query.status);
        const since = request.query.get('since');
        if (since) next.set('since', since);
        next.set('limit', String(query.limit));
        next.set('continuation', page.continuation);
        nextUrl = `${base}/jobs?${next.toString()}`;
      }
      return json(200, {
        jobs: page.jobs.map((j) => ({ ...j, status_url: `${base}/jobs/${j.job_id}` })),
        count: page.jobs.length,
        continuation: page.continuation ?? null,
        next_url: nextUrl,
      });
    }),

    retryJob: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const jobId = jobIdParam(request);
      // it takes no parameter: one that came was meant for something (`?force=true`?), so it is named, not ignored
      const unknown = unknownKeyProblems(
        [...new Set(request.query.keys())],
        ['code'],
        (k) => `query.${k}`,
        'query parameter',
      );
      if (unknown.length > 0) throw new ValidationError(unknown);
      const storage = getStorage();
      await storage.ensureResources();
      const outcome = await retryJob(storage, jobId);
      if (!outcome) throw new AppError('not_found', `No job ${jobId}`);
      return json(200, { ...outcome, status_url: `${apiBase(request)}/jobs/${jobId}` });
    }),

    deleteJob: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const jobId = jobIdParam(request);
      const force = forceParam(request);
      const storage = getStorage();
      await storage.ensureResources();
      const report = await deleteJob(storage, jobId, { force });
      if (!report) throw new AppError('not_found', `No job ${jobId} (never created, or already deleted)`);
      return json(200, report);
    }),
  };
}
