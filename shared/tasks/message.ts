/**
 * The queue message of a task: small JSON naming the task, the input blob and the normalized
 * pipeline. Images never travel in messages (64 KB limit). Workers re-validate every message
 * with the same spec schema the API uses, since a message can be hand-written.
 */
import { ValidationError, type FieldProblem } from '../errors';
import { isPlainObject, problem } from '../validation';
import { normalizeTaskSpec, type TaskSpec } from './spec';
import { currentLimits, type Limits } from '../imaging/limits';

export const MESSAGE_VERSION = 1;

export interface TaskMessage extends TaskSpec {
  readonly v: typeof MESSAGE_VERSION;
  readonly task_id: string;
  readonly job_id: string;
  readonly image: string;
  readonly submitted_at: string;
}

/** Task ids are `<job id>_<index>`, so a task record is a point read (partition = job). */
export const TASK_ID = /^([0-9a-f-]{36})_(\d{4,})$/;
/** Blob names users may give: no path tricks, no control characters. */
export const IMAGE_NAME = /^(?!\.)(?!.*\.\.)[A-Za-z0-9._-]{1,200}$/;

export function jobIdOf(taskId: string): string | undefined {
  return TASK_ID.exec(taskId)?.[1];
}

export function buildTaskMessage(
  taskId: string,
  jobId: string,
  image: string,
  spec: TaskSpec,
  submittedAt: Date,
): TaskMessage {
  return {
    v: MESSAGE_VERSION,
    task_id: taskId,
    job_id: jobId,
    image,
    filters: spec.filters,
    output: spec.output,
    submitted_at: submittedAt.toISOString(),
  };
}

/** Parses a delivered message (object or text) or throws a ValidationError listing every problem. */
export function parseTaskMessage(delivered: unknown, limits: Limits = currentLimits()): TaskMessage {
  const value = typeof delivered === 'string' ? parseJson(delivered) : delivered;
  if (!isPlainObject(value))
    throw new ValidationError([problem('message', 'a JSON object', delivered)], 'queue message');
  const problems: FieldProblem[] = [];
  if (value.v !== MESSAGE_VERSION) problems.push(problem('v', `${MESSAGE_VERSION}`, value.v));
  if (typeof value.task_id !== 'string' || !TASK_ID.test(value.task_id))
    problems.push(problem('task_id', 'a task id <job uuid>_<index>', value.task_id));
  else if (jobIdOf(value.task_id) !== value.job_id)
    problems.push(problem('job_id', `the job of task ${value.task_id}`, value.job_id));
  if (typeof value.image !== 'string' || !IMAGE_NAME.test(value.image))
    problems.push(problem('image', 'a blob name of letters, digits, . _ -', value.image));
  if (typeof value.submitted_at !== 'string' || Number.isNaN(Date.parse(value.submitted_at)))
    problems.push(problem('submitted_at', 'an ISO 8601 time', value.submitted_at));
  let spec: TaskSpec | undefined;
  try {
    spec = normalizeTaskSpec({ filters: value.filters, output: value.output }, limits);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    problems.push(...err.errors);
  }
  if (problems.length > 0 || !spec) throw new ValidationError(problems, 'queue message');
  return Object.freeze({ ...(value as unknown as TaskMessage), filters: spec.filters, output: spec.output });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
