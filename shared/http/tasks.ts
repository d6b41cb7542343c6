/**
 * GET /api/tasks/{task_id} and its result: a 302 to a short-lived read-only link to the result blob
 * (RESULT_LINK_TTL_SECONDS), or the bytes through the function with ?download=stream.
 */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { appSettings, type Settings } from '../config';
import { AppError, ValidationError } from '../errors';
import { isStatus, type Storage } from '../storage/clients';
import { readResult } from '../storage/images';
import { TASK_ID } from '../tasks/message';
import { isResultExpired } from '../tasks/retention';
import { TaskStore, type TaskRecord } from '../tasks/store';
import { fieldProblem } from '../validation';
import { apiBase, resultLinksOf, taskLinks } from './jobs';
import { handled, json } from './respond';
import { isLive, listWorkers } from '../metrics/worker-registry';
import { isClaimRunning } from '../metrics/worker-stats';

async function findTask(storage: Storage, taskId: string | undefined, settings: Settings): Promise<TaskRecord> {
  if (!TASK_ID.test(taskId ?? ''))
    throw new ValidationError([fieldProblem('task_id', 'a task id <job uuid>_<index>', taskId)]);
  await storage.ensureResources();
  const task = await new TaskStore(storage.tasks).get(taskId!);
  if (!task) {
    const kept = settings.retentionTasksDays
      ? ` (task records are kept ${settings.retentionTasksDays} days after their job ended: RETENTION_TASKS_DAYS)`
      : '';
    throw new AppError('not_found', `No task ${taskId}${kept}`);
  }
  return task;
}

/** 410 for a result past RETENTION_RESULTS_DAYS, or whose blob is gone (retention, a lifecycle rule, a purge). */
function expired(task: TaskRecord, settings: Settings): AppError {
  const kept = settings.retentionResultsDays
    ? `results are kept ${settings.retentionResultsDays} days (RETENTION_RESULTS_DAYS) and this one was made at ${task.completed_at}`
    : 'its blob was deleted';
  return new AppError(
    'result_expired',
    `The result of task ${task.task_id} is no longer stored: ${kept}; submit the image again for a new one`,
  );
}

/** Why a queued task waits: roughly how many messages are ahead of it, and whether any worker serves its queue. */
async function queuePosition(storage: Storage, task: TaskRecord) {
  const [{ approximateMessagesCount = 0 }, workers] = await Promise.all([
    storage.queue(task.capability).getProperties(),
    listWorkers(storage),
  ]);
  const live = workers.filter((w) => isLive(w) && w.capabilities.includes(task.capability)).length;
  return {
    queue: task.queue,
    messages_ahead: Math.max(0, approximateMessagesCount - 1),
    approximate: true,
    live_workers: live,
    ...(live === 0 ? { waiting_for: `no live worker serves the ${task.capability} capability` } : {}),
  };
}

/**
 * Who holds a processing task, and whether that claim is still alive: a task whose worker died shows
 * so, with when it will run again (the message returns when its lease ends, and the next delivery
 * takes the dead claim over).
 */
async function claimOf(storage: Storage, task: TaskRecord) {
  const live = await isClaimRunning(storage, task);
  return {
    worker_id: task.worker_id,
    since: task.started_at,
    live,
    ...(live
      ? {}
      : {
          next:
            'its worker is gone: the message comes back when its lease ends (the host renews a lease while a function runs; ' +
            'up to 10 minutes in production) and the next delivery takes the task over',
        }),
  };
}

/** `?download=`: absent (a redirect to the result's link) or `stream` (the bytes through the function). */
function wantsStream(request: HttpRequest): boolean {
  const download = request.query.get('download');
  if (download === null || download === 'stream') return download === 'stream';
  const expected = "'stream' (the bytes through the function), or no download parameter (a 302 to a short-lived link)";
  throw new ValidationError([fieldProblem('query.download', expected, download)]);
}

export function taskRoutes(getStorage: () => Storage, settings: Settings = appSettings()) {
  return {
    getTask: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const storage = getStorage();
      const task = await findTask(storage, request.params.task_id, settings);
      const waiting = task.status === 'queued' ? { queue_position: await queuePosition(storage, task) } : {};
      const running = task.status === 'processing' ? { claim: await claimOf(storage, task) } : {};
      const links = await resultLinksOf(storage, [task], settings);
      return json(200, { ...task, ...taskLinks(apiBase(request), task, links), ...waiting, ...running });
    }),

    getTaskResult: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const stream = wantsStream(request);
      const storage = getStorage();
      const task = await findTask(storage, request.params.task_id, settings);
      if (task.status !== 'succeeded' || !task.output) {
        const why =
          task.status === 'failed'
            ? `it failed (${task.failure_type}: ${task.failure_reason})`
            : `it is ${task.status}`;
        throw new AppError(
          'not_ready',
          `Task ${task.task_id} has no result because ${why}; poll ${apiBase(request)}/tasks/${task.task_id}`,
        );
      }
      if (isResultExpired(task, settings)) throw expired(task, settings);
      if (!stream && storage.results.canSign) {
        // the link is a bearer secret: it goes to the client only, never to a log
        const { url } = await storage.results.link(task.output.blob, settings.resultLinkTtlSeconds);
        return { status: 302, headers: { location: url, 'cache-control': 'no-store' } };
      }
      const data = await readResult(storage, task.output).catch((err: unknown) => {
        throw isStatus(err, 404) ? expired(task, settings) : err;
      });
      return {
        status: 200,
        body: data,
        headers: {
          'content-type': task.output.content_type,
          'content-length': String(data.length),
          'cache-control': 'public, max-age=31536000, immutable',
        },
      };
    }),
  };
}
