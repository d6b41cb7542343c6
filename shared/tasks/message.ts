/**
 * The queue message of a task: small JSON naming the task, the input blob and the normalized
 * pipeline. Images never travel in messages (64 KB limit). Workers re-validate every message
 * with the same spec schema the API uses, since a message can be hand-written.
 * On the wire the encoding keeps the name users give it when they submit a job: `output`.
 */
import { appSettings } from '../config';
import { ValidationError, type FieldProblem } from '../errors';
import type { Limits } from '../imaging/limits';
import type { Encoding } from '../imaging/output';
import { normalizeTaskSpec, type FilterSpec, type TaskSpec } from '../imaging/spec';
import { IMAGE_NAME } from '../storage/images';
import { fieldProblem, isPlainObject } from '../validation';

export const MESSAGE_VERSION = 1;

/** The message as it travels (JSON, base64 on the queue). */
export interface TaskMessage {
  readonly v: typeof MESSAGE_VERSION;
  readonly task_id: string;
  readonly job_id: string;
  readonly image: string;
  readonly filters: readonly FilterSpec[];
  readonly output: Encoding;
  readonly submitted_at: string;
  /**
   * The ETag of the task record as the job created it, when the store's answer carried one: the worker
   * claims the task with a write guarded by it instead of reading the record first. Optional: a message
   * without it (hand-written, or from before it existed) is read first, as is one whose record changed.
   */
  readonly etag?: string;
  /**
   * How many attempts the record at that ETag counts (a retried task's record is not as created): the
   * worker's claim counts on from it. Absent: 0, as createJob's messages leave it.
   */
  readonly attempts?: number;
}

/** The longest etag a message may carry (an Azure Table ETag is about 60 characters). */
export const MAX_ETAG_CHARS = 256;

/** A delivered message once validated: which task, which image, and the spec to run on it. */
export interface DeliveredTask {
  readonly task_id: string;
  readonly job_id: string;
  readonly image: string;
  readonly submitted_at: string;
  /** The record's ETag as created, when the message carries one (see TaskMessage). */
  readonly etag?: string;
  /** The record's attempts at that ETag, when the message says (see TaskMessage). */
  readonly attempts?: number;
  readonly spec: TaskSpec;
}

/** Task ids are `<job id>_<index>`, so a task record is a point read (partition = job). */
export const TASK_ID = /^([0-9a-f-]{36})_(\d{4,})$/;

export function jobIdOf(taskId: string): string | undefined {
  return TASK_ID.exec(taskId)?.[1];
}

/**
 * A delivered message as its text and its value. The queue functions take their message as bytes
 * (`dataType: 'binary'`), so the text is exactly what was enqueued: the Node library would otherwise
 * hand over `JSON.parse(text)`, and `1e999` would come back as Infinity and be stored as `null`.
 * A message handed over already parsed (tests, older callers) is turned back into JSON text.
 */
export interface Received {
  readonly text: string;
  readonly value: unknown;
}

export function received(delivered: unknown): Received {
  if (Buffer.isBuffer(delivered) || delivered instanceof Uint8Array) {
    const text = Buffer.from(delivered).toString('utf8');
    return { text, value: parseJson(text) };
  }
  if (typeof delivered === 'string') return { text: delivered, value: parseJson(delivered) };
  return { text: JSON.stringify(delivered) ?? String(delivered), value: delivered };
}

/** The task a raw message names, when it names one well-formed id, whatever else is wrong with it. */
export function taskIdOf(delivered: unknown): string | null {
  const { value } = received(delivered);
  const taskId = (value as { task_id?: unknown } | null)?.task_id;
  return typeof taskId === 'string' && TASK_ID.test(taskId) ? taskId : null;
}

export interface Delivery {
  readonly id: string;
  readonly dequeueCount: number | null;
}

/** What the queue trigger's metadata says about a delivery: the message id and its delivery count. */
export function deliveryOf(metadata: Record<string, unknown> | undefined, fallbackId: string): Delivery {
  const { id, dequeueCount } = metadata ?? {};
  return {
    id: typeof id === 'string' && id !== '' ? id : fallbackId,
    dequeueCount: typeof dequeueCount === 'number' ? dequeueCount : null,
  };
}

/** A delivered message as text (see `received`). */
export function messageText(delivered: unknown): string {
  return received(delivered).text;
}

export function buildTaskMessage(
  task: { readonly task_id: string; readonly job_id: string; readonly image: string },
  spec: TaskSpec,
  submittedAt: Date,
  etag?: string,
  attempts?: number,
): TaskMessage {
  return {
    v: MESSAGE_VERSION,
    task_id: task.task_id,
    job_id: task.job_id,
    image: task.image,
    filters: spec.filters,
    output: spec.encoding,
    submitted_at: submittedAt.toISOString(),
    ...(etag === undefined ? {} : { etag }),
    ...(attempts ? { attempts } : {}),
  };
}

/** Parses a delivered message (object or text) or throws a ValidationError listing every problem. */
export function parseTaskMessage(delivered: unknown, limits: Limits = appSettings()): DeliveredTask {
  const { value } = received(delivered);
  if (!isPlainObject(value)) {
    throw new ValidationError([fieldProblem('message', 'a JSON object', value)], 'queue message');
  }
  const problems: FieldProblem[] = [];
  if (value.v !== MESSAGE_VERSION) problems.push(fieldProblem('v', `${MESSAGE_VERSION}`, value.v));
  if (typeof value.task_id !== 'string' || !TASK_ID.test(value.task_id)) {
    problems.push(fieldProblem('task_id', 'a task id <job uuid>_<index>', value.task_id));
  } else if (jobIdOf(value.task_id) !== value.job_id) {
    problems.push(fieldProblem('job_id', `the job of task ${value.task_id}`, value.job_id));
  }
  if (typeof value.image !== 'string' || !IMAGE_NAME.test(value.image)) {
    problems.push(fieldProblem('image', 'a blob name of letters, digits, . _ -', value.image));
  }
  if (typeof value.submitted_at !== 'string' || Number.isNaN(Date.parse(value.submitted_at))) {
    problems.push(fieldProblem('submitted_at', 'an ISO 8601 time', value.submitted_at));
  }
  const badEtag = 'etag' in value ? etagProblem(value.etag) : undefined;
  if (badEtag) problems.push(badEtag);
  if ('attempts' in value && !(Number.isSafeInteger(value.attempts) && (value.attempts as number) >= 0))
    problems.push(fieldProblem('attempts', 'a whole number of attempts, 0 or more', value.attempts));
  let spec: TaskSpec | undefined;
  try {
    spec = normalizeTaskSpec({ filters: value.filters, output: value.output }, limits);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    problems.push(...err.errors);
  }
  if (problems.length > 0 || !spec) throw new ValidationError(problems, 'queue message');
  const { task_id, job_id, image, submitted_at, etag, attempts } = value as unknown as TaskMessage;
  return Object.freeze({
    task_id,
    job_id,
    image,
    submitted_at,
    ...(etag === undefined ? {} : { etag }),
    ...(attempts === undefined ? {} : { attempts }),
    spec,
  });
}

/** What is wrong with a message's etag, if anything: present, it is a string of at most MAX_ETAG_CHARS. */
function etagProblem(etag: unknown): FieldProblem | undefined {
  const expected = `the task record's ETag, a string of at most ${MAX_ETAG_CHARS} characters`;
  if (typeof etag !== 'string') return fieldProblem('etag', expected, etag);
  if (etag.length <= MAX_ETAG_CHARS) return undefined;
  const received = `a string of ${etag.length} characters`;
  return { field: 'etag', expected, received, message: `Expected ${expected} for etag but received ${received}` };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
