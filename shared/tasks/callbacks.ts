/**
 * Completion callbacks: a job submitted with `callback_url` gets one registration row (Table `callbacks`,
 * partition = job id) and one message on the `callbacks` queue. Jobs without a callback cost nothing:
 * no worker, task message or task write knows about callbacks.
 *
 * The message is a check: the queue function reads the job's task statuses (one partition query, the
 * status column only) and, while the job is not final, puts the check back hidden for 1 s, 2 s, 4 s …
 * at most CHECK_DELAY_CAP_S: a job's end is noticed within 30 s (plus the queue's polling interval),
 * and a job running for T seconds costs about T/30 + 5 partition reads, never a read per task event.
 * Once the job is final, the same function POSTs the signed event (callback-delivery.ts); a failed
 * attempt (non-2xx, timeout, network error, refused address) is recorded on the row and retried from a
 * new message hidden CALLBACK_RETRY_BASE_SECONDS × 2^(attempt-1) (at most an hour); after
 * CALLBACK_MAX_ATTEMPTS the registration is `dead` (the dead letter), shown on GET /api/jobs/{id}.
 *
 * One event per final state the job reaches, delivered at least once: a retry or a dead-letter requeue that puts
 * a task of a final job back to work re-arms the registration (`reopenCallback`: pending again, a new event id),
 * and an attempt that finds the job no longer final goes back to checking instead of sending a non-final event.
 * Every message carries the step number `seq` it is
 * for; a step is claimed by an ETag-guarded write of the row (seq → seq+1, step_at, step_done false), so
 * of two copies of a message only one runs the step, and a copy of a step already claimed is dropped
 * (done) or put back until the claim's lease ends (running). A claim whose lease ended without its step
 * being recorded belonged to an invocation that died: the next copy of that message takes it over. The
 * next message is sent before the step is recorded done, so a crash between the two leaves a duplicate
 * (dropped at the next step), never no message. The event id is fixed at registration, so a receiver
 * that sees an event twice (a crash after its 2xx, before `delivered` was written) can tell.
 */
import { randomUUID } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import { MAX_CALLBACK_URL_CHARS, type Resolver } from '../callback-url';
import type { Settings } from '../config';
import { isStatus, type Storage } from '../storage/clients';
import { enqueue } from '../storage/queue';
import { isPlainObject } from '../validation';
import { deliverEvent, type DeliveryOutcome } from './callback-delivery';
import { summarizeJob, type JobStatus } from './jobs';
import { received } from './message';
import { TaskStore, type TaskStatus } from './store';

export type CallbackState = 'pending' | 'delivering' | 'delivered' | 'dead';

export interface CallbackRegistration {
  readonly job_id: string;
  readonly url: string;
  /** The API's base URL as the client reached it at submit: the event's links start with it. */
  readonly api_base: string;
  readonly state: CallbackState;
  readonly event_id: string;
  readonly created_at: string;
  /** Checks of the job's state made while it was not final. */
  readonly checks: number;
  readonly attempts: number;
  readonly last_status: number | null;
  readonly last_error: string | null;
  readonly last_attempt_at: string | null;
  readonly next_attempt_at: string | null;
  readonly delivered_at: string | null;
  /** The next step's number (messages carry the step they are for). */
  readonly seq: number;
  /** When the running or last step was claimed, and whether it has been recorded done. */
  readonly step_at: string | null;
  readonly step_done: boolean;
}

/** The settings callbacks read. */
export type CallbackSettings = Pick<
  Settings,
  'callbackSecret' | 'callbackAllowPrivate' | 'callbackMaxAttempts' | 'callbackTimeoutMs' | 'callbackRetryBaseSeconds'
>;

export interface CallbackDeps {
  readonly storage: Storage;
  readonly settings: CallbackSettings;
  readonly resolve?: Resolver;
  readonly log?: (line: string) => void;
  readonly now?: () => Date;
}

export type CallbackOutcome =
  | 'invalid_message'
  | 'unknown_job'
  | 'finished'
  | 'stale'
  | 'deferred'
  | 'lost_race'
  | 'waiting'
  | 'delivered'
  | 'retrying'
  | 'dead';

const ROW = 'callback';
const MESSAGE_VERSION = 1;
/** Checks of a job that is not final come back after 1, 2, 4 … seconds, at most this many. */
export const CHECK_DELAY_CAP_S = 30;
/** The longest wait between two delivery attempts. */
const RETRY_DELAY_CAP_S = 3600;
/**
 * A job not final this long after submit is given up: every check costs a queue message and a table read,
 * and a job still open after a week is stuck or waits for a capability nobody runs (its task messages stay:
 * they never expire); the registration says dead and why.
 */
const MAX_WAIT_MS = 7 * 24 * 3600 * 1000;
/** A job with no task records this long after its callback was registered was never created, or was deleted. */
const NO_TASKS_GRACE_MS = 10 * 60 * 1000;
/** How long a claimed step may run (a delivery's timeout, plus reading the job) before another copy takes it over. */
const leaseMs = (settings: CallbackSettings) => settings.callbackTimeoutMs + 60_000;
/** An event carries at most this much of each task's error. */
const EVENT_ERROR_CHARS = 500;
const STORED_ERROR_CHARS = 1000;

export const checkDelayS = (checks: number): number => Math.min(2 ** Math.min(checks, 10), CHECK_DELAY_CAP_S);
export const retryDelayS = (attempt: number, baseS: number): number =>
  Math.min(baseS * 2 ** Math.min(attempt - 1, 20), RETRY_DELAY_CAP_S);

interface CallbackMessage {
  readonly v: typeof MESSAGE_VERSION;
  readonly job_id: string;
  readonly seq: number;
}

type Entity = Omit<
  CallbackRegistration,
  'job_id' | 'last_status' | 'last_error' | 'last_attempt_at' | 'next_attempt_at' | 'delivered_at' | 'step_at'
> & {
  partitionKey: string;
  rowKey: string;
  // absent values are stored as '' and 0: a Merge can then clear them
  last_status: number;
  last_error: string;
  last_attempt_at: string;
  next_attempt_at: string;
  delivered_at: string;
  step_at: string;
};

const orNull = <T>(v: T | undefined, none: T): T | null => (v === undefined || v === none ? null : v);

function toRegistration(e: Entity): CallbackRegistration {
  return {
    job_id: e.partitionKey,
    url: e.url,
    api_base: e.api_base,
    state: e.state,
    event_id: e.event_id,
    created_at: e.created_at,
    checks: e.checks,
    attempts: e.attempts,
    last_status: orNull(e.last_status, 0),
    last_error: orNull(e.last_error, ''),
    last_attempt_at: orNull(e.last_attempt_at, ''),
    next_attempt_at: orNull(e.next_attempt_at, ''),
    delivered_at: orNull(e.delivered_at, ''),
    seq: e.seq,
    step_at: orNull(e.step_at, ''),
    step_done: e.step_done,
  };
}

interface StoredRegistration {
  readonly registration: CallbackRegistration;
  readonly etag: string;
}

async function read(table: TableClient, jobId: string): Promise<StoredRegistration | undefined> {
  try {
    const e = await table.getEntity<Entity>(jobId, ROW);
    return { registration: toRegistration(e), etag: e.etag };
  } catch (err) {
    if (isStatus(err, 404)) return undefined;
    throw err;
  }
}

/** Merges `columns` into the row if it is still at `etag`: the new ETag, or undefined when another write came first. */
async function write(
  table: TableClient,
  jobId: string,
  etag: string,
  columns: Partial<Omit<Entity, 'partitionKey' | 'rowKey'>>,
): Promise<string | undefined> {
  try {
    const answer = await table.updateEntity({ partitionKey: jobId, rowKey: ROW, ...columns }, 'Merge', { etag });
    return answer.etag ?? '*';
  } catch (err) {
    if (isStatus(err, 412)) return undefined;
    throw err;
  }
}

const messageOf = (jobId: string, seq: number): CallbackMessage => ({ v: MESSAGE_VERSION, job_id: jobId, seq });

/**
 * Registers the callback of a job about to be created and sends its first check (hidden 1 s). Done before
 * the job's tasks are written, so a job is never left with a callback nobody checks; a job whose tasks
 * never get written is given up after NO_TASKS_GRACE_MS.
 */
export async function registerCallback(
  storage: Storage,
  jobId: string,
  url: string,
  apiBase: string,
  now = new Date(),
): Promise<void> {
  if (url.length > MAX_CALLBACK_URL_CHARS) throw new Error(`callback URL of ${url.length} characters`);
  const entity: Entity = {
    partitionKey: jobId,
    rowKey: ROW,
    url,
    api_base: apiBase,
    created_at: now.toISOString(),
    ...rearmed(),
    seq: 0,
    step_at: '',
    step_done: true,
  };
  await storage.callbacks.createEntity(entity);
  await enqueue(storage.callbackQueue(), messageOf(jobId, 0), { visibilityTimeout: checkDelayS(0) });
}

/** A job's callback registration, if it has one. */
export async function getCallback(storage: Storage, jobId: string): Promise<CallbackRegistration | undefined> {
  return (await read(storage.callbacks, jobId))?.registration;
}

/**
 * Removes a job's registration (the job is deleted): a check or retry message still on the queue then finds
 * no registration and is dropped. False when it had none.
 */
export async function deleteCallback(storage: Storage, jobId: string): Promise<boolean> {
  try {
    await storage.callbacks.deleteEntity(jobId, ROW);
    return true;
  } catch (err) {
    if (isStatus(err, 404)) return false;
    throw err;
  }
}

/** What GET /api/jobs/{id} shows of a registration. */
export function callbackView(r: CallbackRegistration, settings: Pick<Settings, 'callbackMaxAttempts'>) {
  return {
    url: r.url,
    state: r.state,
    event_id: r.event_id,
    attempts: r.attempts,
    max_attempts: settings.callbackMaxAttempts,
    last_status: r.last_status,
    last_error: r.last_error,
    last_attempt_at: r.last_attempt_at,
    next_attempt_at: r.next_attempt_at,
    delivered_at: r.delivered_at,
  };
}

function parseMessage(delivered: unknown): CallbackMessage | undefined {
  const { value } = received(delivered);
  if (!isPlainObject(value)) return undefined;
  const { v, job_id: jobId, seq } = value;
  if (v !== MESSAGE_VERSION || typeof jobId !== 'string' || !/^[0-9a-f-]{36}$/.test(jobId)) return undefined;
  if (!Number.isSafeInteger(seq) || (seq as number) < 0) return undefined;
  return { v, job_id: jobId, seq: seq as number };
}

/** One delivered message of the callbacks queue: claim its step, then check the job or deliver its event. */
export async function processCallbackMessage(delivered: unknown, deps: CallbackDeps): Promise<CallbackOutcome> {
  await deps.storage.ensureResources();
  const now = deps.now?.() ?? new Date();
  const message = parseMessage(delivered);
  if (!message) {
    deps.log?.(
      `callback message dropped: expected {"v":1,"job_id":"<uuid>","seq":<n>}, received ${received(delivered).text.slice(0, 200)}`,
    );
    return 'invalid_message';
  }
  const table = deps.storage.callbacks;
  const stored = await read(table, message.job_id);
  if (!stored) return 'unknown_job';
  const { registration: r, etag } = stored;
  if (r.state === 'delivered' || r.state === 'dead') return 'finished';
  const s = message.seq;
  let claimed: string | undefined;
  if (s === r.seq) {
    claimed = await write(table, r.job_id, etag, { seq: s + 1, step_at: now.toISOString(), step_done: false });
  } else if (s === r.seq - 1 && !r.step_done) {
    const heldFor = now.getTime() - Date.parse(r.step_at ?? '');
    const lease = leaseMs(deps.settings);
    if (heldFor < lease) {
      // another copy is running this step: look again once its lease could have ended
      const visibilityTimeout = Math.max(1, Math.ceil((lease - heldFor) / 1000));
      await enqueue(deps.storage.callbackQueue(), messageOf(r.job_id, s), { visibilityTimeout });
      return 'deferred';
    }
    deps.log?.(`callback of job ${r.job_id}: step ${s} claimed ${heldFor} ms ago and never recorded; taking it over`);
    claimed = await write(table, r.job_id, etag, { step_at: now.toISOString() });
  } else {
    return 'stale';
  }
  if (claimed === undefined) return 'lost_race';
  return runStep({ ...r, seq: s + 1 }, claimed, deps, now);
}

async function runStep(r: CallbackRegistration, etag: string, deps: CallbackDeps, now: Date): Promise<CallbackOutcome> {
  const { storage, settings } = deps;
  const record = async (columns: Partial<Omit<Entity, 'partitionKey' | 'rowKey'>>) => {
    const written = await write(storage.callbacks, r.job_id, etag, { ...columns, step_done: true });
    if (written === undefined)
      deps.log?.(`callback of job ${r.job_id}: step ${r.seq - 1} was taken over; its outcome is not recorded`);
  };
  const giveUp = async (why: string): Promise<CallbackOutcome> => {
    await record({ state: 'dead', last_error: why, next_attempt_at: '' });
    deps.log?.(`callback of job ${r.job_id} is dead: ${why}`);
    return 'dead';
  };
  if (r.state === 'pending') {
    const statuses = await taskStatuses(storage, r.job_id);
    if (!isFinal(statuses)) {
      const age = now.getTime() - Date.parse(r.created_at);
      if (statuses.length === 0 && age > NO_TASKS_GRACE_MS)
        return giveUp('the job has no tasks (never created, or deleted)');
      if (age > MAX_WAIT_MS) return giveUp('the job did not reach a final state within 7 days');
      await enqueue(storage.callbackQueue(), messageOf(r.job_id, r.seq), { visibilityTimeout: checkDelayS(r.checks) });
      await record({ checks: r.checks + 1 });
      return 'waiting';
    }
  }
  const tasks = await new TaskStore(storage.tasks).listJob(r.job_id);
  if (tasks.length === 0) return giveUp('the job has no tasks (deleted)');
  if (!isFinal(tasks.map((t) => t.status))) {
    // a task went back to work (a retry, a dead-letter requeue) after the job was final: the event this
    // registration was sending is out of date, so it checks again and the next final state gets a new event
    await enqueue(storage.callbackQueue(), messageOf(r.job_id, r.seq), { visibilityTimeout: checkDelayS(0) });
    await record({ ...rearmed(), checks: 1 });
    return 'waiting';
  }
  const event = buildEvent(r, tasks);
  const attempt = r.attempts + 1;
  const outcome: DeliveryOutcome = settings.callbackSecret
    ? await deliverEvent(
        {
          url: r.url,
          body: event.body,
          eventId: r.event_id,
          eventType: event.type,
          attempt,
          secret: settings.callbackSecret,
          timeoutMs: settings.callbackTimeoutMs,
          policy: { allowPrivate: settings.callbackAllowPrivate === 'true', resolve: deps.resolve },
        },
        now,
      )
    : { ok: false, status: null, error: 'CALLBACK_SECRET is not set: events are not sent unsigned' };
  const done = new Date().toISOString();
  const common = {
    attempts: attempt,
    last_status: outcome.status ?? 0,
    last_error: (outcome.error ?? '').slice(0, STORED_ERROR_CHARS),
    last_attempt_at: done,
  };
  if (outcome.ok) {
    await record({ ...common, state: 'delivered', delivered_at: done, next_attempt_at: '' });
    return 'delivered';
  }
  if (attempt >= settings.callbackMaxAttempts) {
    await record({ ...common, state: 'dead', next_attempt_at: '' });
    deps.log?.(`callback of job ${r.job_id} is dead after ${attempt} attempts: ${outcome.error}`);
    return 'dead';
  }
  const delayS = retryDelayS(attempt, settings.callbackRetryBaseSeconds);
  await enqueue(storage.callbackQueue(), messageOf(r.job_id, r.seq), { visibilityTimeout: delayS });
  const next = new Date(Date.now() + delayS * 1000).toISOString();
  await record({ ...common, state: 'delivering', next_attempt_at: next });
  return 'retrying';
}

const isFinal = (statuses: readonly TaskStatus[]): boolean =>
  statuses.length > 0 && statuses.every((s) => s === 'succeeded' || s === 'failed');

/** A registration back to `pending` for a job that is running again: its next final state is a new event. */
const rearmed = () => ({
  state: 'pending' as const,
  event_id: randomUUID(),
  checks: 0,
  attempts: 0,
  last_status: 0,
  last_error: '',
  last_attempt_at: '',
  next_attempt_at: '',
  delivered_at: '',
});

/** How many times a re-arm reads again after losing its write to a concurrent step. */
const REARM_RETRIES = 5;

/**
 * A task of the job went back to work (POST /api/jobs/{id}/retry, a dead-letter requeue): the job is not
 * final any more, so its callback, if it has one, is re-armed unless it is already waiting for the job (pending,
 * no step running: its next check sees the job running). Re-armed: pending, a new event id (the outcome
 * differs from any event sent before), counters cleared, and a new step number whose check message is sent
 * here; messages of earlier steps become stale. Guarded by the row's ETag: a step that was running loses its
 * write and its outcome is not recorded. Answers whether it re-armed.
 */
export async function reopenCallback(storage: Storage, jobId: string): Promise<boolean> {
  for (let i = 0; i < REARM_RETRIES; i++) {
    const stored = await read(storage.callbacks, jobId);
    if (!stored) return false;
    const { registration: r, etag } = stored;
    if (r.state === 'pending' && r.step_done) return false;
    const seq = r.seq + 1;
    const written = await write(storage.callbacks, jobId, etag, { ...rearmed(), seq, step_at: '', step_done: true });
    if (written === undefined) continue;
    await enqueue(storage.callbackQueue(), messageOf(jobId, seq), { visibilityTimeout: checkDelayS(0) });
    return true;
  }
  throw new Error(`the callback of job ${jobId} kept changing under ${REARM_RETRIES} attempts to re-arm it`);
}

/** The job's task statuses: one partition query of the status column only (it runs every few seconds per job). */
async function taskStatuses(storage: Storage, jobId: string): Promise<TaskStatus[]> {
  const statuses: TaskStatus[] = [];
  const query = storage.tasks.listEntities<{ status: TaskStatus }>({
    queryOptions: { filter: `PartitionKey eq '${jobId.replace(/'/g, "''")}'`, select: ['status'] },
  });
  for await (const e of query) statuses.push(e.status);
  return statuses;
}

export type EventType = `job.${Exclude<JobStatus, 'queued' | 'processing'>}`;

/** The event body (JSON text, as signed and sent) of a final job: the same text on every attempt. */
export function buildEvent(
  r: Pick<CallbackRegistration, 'job_id' | 'event_id' | 'api_base'>,
  tasks: Parameters<typeof summarizeJob>[1],
): { type: EventType; body: string } {
  const summary = summarizeJob(r.job_id, tasks);
  const type = `job.${summary.status}` as EventType;
  const times = (pick: (t: (typeof tasks)[number]) => string | null) =>
    tasks
      .map(pick)
      .filter((v): v is string => v !== null)
      .sort();
  const event = {
    id: r.event_id,
    type,
    job_id: r.job_id,
    status: summary.status,
    total: summary.total,
    counts: summary.counts,
    created_at: times((t) => t.created_at)[0] ?? null,
    completed_at: times((t) => t.completed_at).at(-1) ?? null,
    status_url: `${r.api_base}/jobs/${r.job_id}`,
    tasks: summary.tasks.map((t) => ({
      task_id: t.task_id,
      status: t.status,
      image: t.image,
      ...(t.status === 'succeeded'
        ? { result_url: `${r.api_base}/tasks/${t.task_id}/result` }
        : {
            failure_type: t.failure_type,
            failure_reason: t.failure_reason,
            error: t.error && t.error.slice(0, EVENT_ERROR_CHARS),
          }),
    })),
  };
  return { type, body: JSON.stringify(event) };
}

/**
 * A callbacks message the host gave up on (its handler threw maxDequeueCount times: storage failing) ends
 * here: its registration is marked dead with the reason, so GET /api/jobs/{id} says so instead of `pending`
 * forever. A poison handler is not retried, so this never throws: a write it cannot make is logged.
 */
export async function handleCallbackPoison(delivered: unknown, deps: Omit<CallbackDeps, 'settings'>): Promise<void> {
  const message = parseMessage(delivered);
  if (!message) {
    deps.log?.(`callback poison message dropped (not a callback message): ${received(delivered).text.slice(0, 200)}`);
    return;
  }
  try {
    const stored = await read(deps.storage.callbacks, message.job_id);
    if (!stored || stored.registration.state === 'delivered' || stored.registration.state === 'dead') return;
    const why = 'the callback message failed every delivery the host made (storage errors); see the function logs';
    await write(deps.storage.callbacks, message.job_id, stored.etag, {
      state: 'dead',
      last_error: why,
      next_attempt_at: '',
      step_done: true,
    });
  } catch (err) {
    deps.log?.(`callback of job ${message.job_id}: could not record it dead: ${String(err)}`);
  }
}
