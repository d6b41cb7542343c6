/**
 * Where the CLI reads and writes. Commands never touch `process` directly, so tests run `main`
 * in-process with captured streams and their own Ctrl-C.
 */
export interface OutStream extends NodeJS.WritableStream {
  isTTY?: boolean;
}

export interface InStream extends NodeJS.ReadableStream {
  isTTY?: boolean;
}

export interface CliIo {
  readonly stdout: OutStream;
  readonly stderr: OutStream;
  readonly stdin: InStream;
  readonly env: NodeJS.ProcessEnv;
  /**
   * Opts a long-running command into a graceful Ctrl-C: the signal aborts instead of the process
   * dying. Commands that never ask keep Node's default (exit at once), which suits short calls.
   */
  interrupts(): AbortSignal;
}

export function processIo(): CliIo {
  let controller: AbortController | undefined;
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    interrupts() {
      if (!controller) {
        const created = new AbortController();
        process.once('SIGINT', () => created.abort());
        controller = created;
      }
      return controller.signal;
    },
  };
}

/** A bad command line: the usage goes to stderr and the exit code is 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export const isTty = (stream: OutStream | InStream): boolean => stream.isTTY === true;

export function writeLine(stream: OutStream, line = ''): void {
  stream.write(`${line}\n`);
}

/** Resolves after `ms`, or early (without error) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}
