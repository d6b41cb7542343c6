/**
 * `purge`: asks, then DELETE /tasks on the API the CLI is pointed at, which deletes every queued
 * message (main and poison queues), task record, dead letter and processed result of that app's
 * storage; images, the worker registry and metrics are kept. The CLI never opens storage itself,
 * so it empties exactly the app --url names, whatever local.settings.json says.
 */
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { ApiError, KEY_ENV, type ApiClient } from '../api';
import type { CliContext } from '../context';
import { isTty, writeLine, type CliIo } from '../io';
import type { PurgeReport } from '../types';

export const purgeQuestion = (baseUrl: string): string =>
  `Delete all queued messages, task records, dead letters and processed results of the app at ${baseUrl}? [y/N]`;

/** The first line typed, or undefined when stdin ends first (nothing typed, or /dev/null). */
export function readAnswer(io: CliIo): Promise<string | undefined> {
  const rl = createInterface({ input: io.stdin, terminal: false });
  return new Promise((resolve) => {
    rl.once('line', (line) => {
      resolve(line);
      rl.close();
    });
    rl.once('close', () => resolve(undefined));
  });
}

export function renderPurge(baseUrl: string, r: PurgeReport): string {
  return [
    `purged the app at ${baseUrl}:`,
    `  ${r.queued_messages.deleted} queued message(s) from ${r.queued_messages.queues.join(', ')}`,
    `  ${r.task_records.deleted} task record(s) from table ${r.task_records.table}`,
    ...(r.job_records ? [`  ${r.job_records.deleted} job record(s) from table ${r.job_records.table}`] : []),
    `  ${r.dead_letters.deleted} dead letter(s) from table ${r.dead_letters.table}`,
    `  ${r.processed_results.deleted} processed result(s) from container ${r.processed_results.container}`,
    `kept: ${r.kept.join(', ')}`,
  ].join('\n');
}

export async function runPurge(api: ApiClient, io: CliIo, opts: { yes?: boolean }): Promise<number> {
  if (!opts.yes) {
    io.stdout.write(`${purgeQuestion(api.baseUrl)} `);
    const answer = await readAnswer(io);
    if (answer === undefined && !isTty(io.stdin)) {
      writeLine(
        io.stderr,
        '\nerror: refusing to purge: stdin is not a terminal and no answer came; pass --yes to purge without asking',
      );
      return 2;
    }
    if (!/^\s*y(es)?\s*$/i.test(answer ?? '')) {
      writeLine(io.stdout, 'Nothing deleted.');
      return 1;
    }
  }
  let report: PurgeReport;
  try {
    report = await api.delete<PurgeReport>('/tasks');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401)
      throw new Error(
        `${err.url} answered HTTP 401: purge needs the app's master key; pass it with --key or ${KEY_ENV}`,
      );
    throw err;
  }
  writeLine(io.stdout, renderPurge(api.baseUrl, report));
  return 0;
}

export function registerPurge(program: Command, ctx: CliContext): void {
  program
    .command('purge')
    .description(
      'delete all queued messages, task records, dead letters and processed results of the app at --url (asks first)',
    )
    .option('--yes', 'do not ask')
    .action(async (opts: { yes?: boolean }, cmd: Command) =>
      ctx.exit(await runPurge(ctx.api(cmd, 'admin'), ctx.io, opts)),
    );
}
