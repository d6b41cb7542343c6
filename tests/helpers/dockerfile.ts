/** A small Dockerfile reader: enough to check stages and COPY instructions without a Docker daemon. */
export interface Instruction {
  op: string;
  args: string;
}
export interface Stage {
  from: string;
  name: string | null;
  steps: Instruction[];
}

/** Instructions with continuations joined and comments dropped, grouped by stage. */
export function parseDockerfile(text: string): Stage[] {
  const lines: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) continue;
    if (pending && line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    lines.push(pending + line);
    pending = '';
  }
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op, args] = /^(\S+)\s+([\s\S]*)$/.exec(line)!;
    if (op.toUpperCase() === 'FROM') {
      const [, image, name] = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!;
      stages.push({ from: image, name: name ?? null, steps: [] });
    } else if (op.toUpperCase() !== 'ARG' || stages.length) {
      stages[stages.length - 1].steps.push({ op: op.toUpperCase(), args });
    }
  }
  return stages;
}

export const steps = (stage: Stage, op: string): string[] => stage.steps.filter((s) => s.op === op).map((s) => s.args);

export const copies = (stage: Stage): { from: string | null; sources: string[]; dest: string }[] =>
  steps(stage, 'COPY').map((args) => {
    const words = args.split(/\s+/);
    const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length) ?? null;
    const paths = words.filter((w) => !w.startsWith('--'));
    return { from, sources: paths.slice(0, -1), dest: paths[paths.length - 1] };
  });
