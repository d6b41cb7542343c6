/**
 * Progress for waits: a live bar on a terminal, plain lines (only when something changed)
 * everywhere else, so logs and CI output stay readable.
 */
import { Presets, SingleBar } from 'cli-progress';
import { isTty, writeLine, type OutStream } from './io';

export interface Progress {
  update(done: number, detail: string): void;
  stop(): void;
}

export function progress(stream: OutStream, label: string, total: number): Progress {
  if (!isTty(stream)) {
    let last = '';
    return {
      update(done, detail) {
        const line = `${label}: ${done}/${total} ${detail}`.trimEnd();
        if (line !== last) writeLine(stream, line);
        last = line;
      },
      stop() {},
    };
  }
  const bar = new SingleBar(
    {
      stream,
      format: `${label} [{bar}] {value}/{total} {detail}`,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 20,
    },
    Presets.shades_classic,
  );
  bar.start(total, 0, { detail: '' });
  return {
    update: (done, detail) => bar.update(done, { detail }),
    stop: () => bar.stop(),
  };
}
