/**
 * `dead-letters` lists what ran out of retries per capability; `requeue <capability>` sends it back to work,
 * `requeue <capability> <id>` one dead letter of it (the id as `dead-letters` lists it).
 */
import { Argument, type Command } from 'commander';
import { CAPABILITIES } from '../../../shared/capabilities';
import { ApiError, KEY_ENV, type ApiClient } from '../api';
import type { CliContext } from '../context';
import { table } from '../format';
import { writeLine, type CliIo } from '../io';
import type { DeadLetters, RequeueResult } from '../types';

export function renderDeadLetters(d: DeadLetters): string {
  const summary = table(
    ['capability', 'poison queue', 'waiting in poison queue', 'dead letters'],
    d.capabilities.map((c) => [c.capability, c.poison_queue, c.waiting_in_poison_queue, c.count]),
  );
  const letters = d.capabilities.flatMap((c) =>
    c.dead_letters.map((l) => [c.capability, l.task_id ?? l.id, l.reason, l.dequeue_count, l.failed_at]),
  );
  if (letters.length === 0) return `${summary}\nno dead letters`;
  const hint = `requeue with: image-pipeline requeue <capability>`;
  return [summary, table(['capability', 'task', 'reason', 'deliveries', 'failed at'], letters), hint].join('\n');
}

export async function runDeadLetters(api: ApiClient, io: CliIo): Promise<number> {
  writeLine(io.stdout, renderDeadLetters(await api.get<DeadLetters>('/dead-letters')));
  return 0;
}

export async function runRequeue(api: ApiClient, io: CliIo, capability: string, id?: string): Promise<number> {
  const one = id === undefined ? '' : `/${encodeURIComponent(id)}`;
  let result: RequeueResult;
  try {
    result = await api.post<RequeueResult>(`/dead-letters/${encodeURIComponent(capability)}${one}/requeue`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401)
      throw new Error(
        `${err.url} answered HTTP 401: requeue needs the app's master key; pass it with --key or ${KEY_ENV}`,
      );
    // The app answers 404 when there is nothing to requeue: nothing to do is not a failure. A 404
    // from the host (no such route: a URL without /api) is.
    // One letter that is not there is: the id was wrong or it was requeued already (the problem says).
    if (!(err instanceof ApiError && err.status === 404 && err.fromApp && !one)) throw err;
    writeLine(io.stdout, `${capability}: nothing to requeue (${err.problem?.detail ?? 'no dead letters'})`);
    return 0;
  }
  writeLine(
    io.stdout,
    `${result.capability}: requeued ${result.requeued} message(s) onto ${result.queue}; skipped ${result.skipped.length}`,
  );
  for (const s of result.skipped) writeLine(io.stdout, `  skipped ${s.id}: ${s.reason}`);
  return 0;
}

export function registerDeadLetters(program: Command, ctx: CliContext): void {
  program
    .command('dead-letters')
    .description('messages that ran out of retries, and the poison-queue backlog, per capability')
    .action(async (_opts: unknown, cmd: Command) => ctx.exit(await runDeadLetters(ctx.api(cmd), ctx.io)));

  program
    .command('requeue')
    .description("put a capability's dead letters, or one of them, back on its queue (needs the master key)")
    .addArgument(new Argument('<capability>', 'which capability').choices(CAPABILITIES.map((c) => c.name)))
    .addArgument(new Argument('[id]', 'one dead letter, by its id as `dead-letters` lists it'))
    .action(async (capability: string, id: string | undefined, _opts: unknown, cmd: Command) =>
      ctx.exit(await runRequeue(ctx.api(cmd, 'admin'), ctx.io, capability, id)),
    );
}
