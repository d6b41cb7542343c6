#!/usr/bin/env node
/**
 * `image-pipeline` (node dist/scripts/cli.js): a command line for the app's HTTP API. One module
 * per command under cli/commands; this file wires them into commander and turns every outcome
 * into an exit code: 0 success, 1 a failure (the app said no, or is not reachable), 2 a bad
 * command line (including a pipeline the app would refuse, found before anything is sent).
 * Results go to stdout, errors to stderr. Every command goes through the API at --url; none opens
 * storage. `main` takes its streams as an argument so tests run it in-process.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { AppError } from '../shared/errors';
import { ApiClient, ApiError, DEFAULT_URL, KEY_ENV, normalizeBaseUrl, problemLines, URL_ENV } from './cli/api';
import type { CliContext } from './cli/context';
import { chooseKey } from './cli/keys';
import { processIo, UsageError, writeLine, type CliIo } from './cli/io';
import { registerCheck } from './cli/commands/check';
import { registerCompare } from './cli/commands/compare';
import { registerDeadLetters } from './cli/commands/dead-letters';
import { registerJobs } from './cli/commands/jobs';
import { registerMetrics } from './cli/commands/metrics';
import { registerPurge } from './cli/commands/purge';
import { registerStress } from './cli/commands/stress';
import { registerSubmit } from './cli/commands/submit';
import { version } from '../package.json';

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

function urlOption(value: string): string {
  try {
    return normalizeBaseUrl(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function urlFromEnv(env: NodeJS.ProcessEnv): string {
  try {
    return normalizeBaseUrl(env[URL_ENV] || DEFAULT_URL);
  } catch (err) {
    throw new UsageError(`${URL_ENV}: ${(err as Error).message}`);
  }
}

function buildProgram(ctx: CliContext, io: CliIo): Command {
  const program = new Command('image-pipeline')
    .description(
      'Drive the image pipeline over its HTTP API: check, submit, stress, monitor, compare, jobs, dead letters, purge.',
    )
    .version(version)
    .option('--url <url>', `the API base URL (env ${URL_ENV}, default ${DEFAULT_URL})`, urlOption)
    .option(
      '--key <key>',
      `the app's key, sent as x-functions-key (env ${KEY_ENV}); purge, requeue and delete need the master key. ` +
        'For a localhost URL the default is the local host key in local.settings.json',
    )
    // Set before the commands are added: commander copies these settings into each of them.
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
  registerCheck(program, ctx);
  registerMetrics(program, ctx);
  registerSubmit(program, ctx);
  registerStress(program, ctx);
  registerCompare(program, ctx);
  registerDeadLetters(program, ctx);
  registerJobs(program, ctx);
  registerPurge(program, ctx);
  return program;
}

/** What went wrong, in the words of whoever knows best: the API's problem detail and field errors, or the message. */
function failureLines(err: unknown): string[] {
  if (err instanceof ApiError) return err.lines();
  if (err instanceof AppError) return problemLines(err.message, err.errors, err.title);
  if (err instanceof Error) return [err.message];
  return [String(err)];
}

export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  let code: number = EXIT.ok;
  const ctx: CliContext = {
    io,
    api(command, level = 'function') {
      const { url: given, key } = command.optsWithGlobals<{ url?: string; key?: string }>();
      const baseUrl = given ?? urlFromEnv(io.env);
      const chosen = chooseKey(level, baseUrl, key, io.env);
      return new ApiClient(baseUrl, chosen.key, chosen.source);
    },
    exit(c) {
      code = c;
    },
  };
  const program = buildProgram(ctx, io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (err) {
    // Commander has printed message and usage.
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (err instanceof UsageError) {
      writeLine(io.stderr, `error: ${err.message}`);
      writeLine(io.stderr, '(run image-pipeline --help for usage)');
      return EXIT.usage;
    }
    for (const [i, line] of failureLines(err).entries()) writeLine(io.stderr, i === 0 ? `error: ${line}` : line);
    return EXIT.failed;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = EXIT.failed;
    },
  );
}
