/**
 * Regenerates the parts of README.md that come from code: the filter, capability and configuration
 * tables, between `<!-- NAME:start -->` and `<!-- NAME:end -->` markers. A test fails when the
 * README drifts; `npm run docs` brings it back. The README's example outputs come from a live run instead:
 * `npm run examples` (scripts/readme-examples.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expectedOf } from '../shared/imaging/spec';
import { FILTERS } from '../shared/imaging/filters';
import { loadSettings, SETTINGS, type Setting } from '../shared/config';
import type { ParamSpec } from '../shared/imaging/filter';
import { capabilityTable } from '../shared/tasks/routing';
import { PROJECT_ROOT, writeGenerated } from './paths';

export const README = path.join(PROJECT_ROOT, 'README.md');
const DEFAULT_LIMITS = loadSettings({});

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function describeParam(name: string, spec: ParamSpec): string {
  const fallback = spec.required
    ? 'required'
    : spec.default === undefined || spec.default === null
      ? 'optional'
      : `default ${spec.default}`;
  return `\`${name}\` ${expectedOf(spec, DEFAULT_LIMITS)}, ${fallback}: ${spec.description}`;
}

export function renderFilterTable(): string {
  const rows = [...FILTERS.values()].map((f) => {
    const params =
      Object.entries(f.params)
        .map(([n, s]) => describeParam(n, s))
        .join('<br>') || '—';
    return `| \`${f.name}\` | ${f.capability} | ${cell(f.description)} | ${cell(params)} |`;
  });
  return ['| filter | capability | effect | parameters |', '|---|---|---|---|', ...rows].join('\n');
}

export function renderCapabilityTable(): string {
  const rows = capabilityTable().map(
    (c) =>
      `| \`${c.name}\` | \`${c.queue}\` | \`${c.poison_queue}\` | ${c.scaling.queueLength} | ${c.scaling.minReplicas}–${c.scaling.maxReplicas} | ${c.filters.join(', ')} |`,
  );
  return [
    '| capability | queue | poison queue | KEDA queueLength | replicas | filters |',
    '|---|---|---|---:|---|---|',
    ...rows,
  ].join('\n');
}

/** The app settings table, from the one definition the app validates them with. */
export function renderConfigurationTable(): string {
  const rows = Object.values<Setting>(SETTINGS).map((s) => {
    const shown = s.shownDefault ?? (s.kind === 'text' ? `\`${s.fallback}\`` : String(s.fallback));
    const allowed = s.kind === 'integer' ? `${s.min}–${s.max}` : s.expected;
    return `| \`${s.env}\` | ${cell(shown)} | ${cell(allowed)} | ${cell(s.meaning)} |`;
  });
  return ['| variable | default | allowed | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

const SECTIONS: Record<string, () => string> = {
  filters: renderFilterTable,
  capabilities: renderCapabilityTable,
  configuration: renderConfigurationTable,
};

/** The README with every generated section replaced by its current rendering. */
export function regenerate(readme: string): string {
  let out = readme;
  for (const [name, render] of Object.entries(SECTIONS)) {
    const pattern = new RegExp(`(<!-- ${name}:start -->\\n)[\\s\\S]*?(\\n<!-- ${name}:end -->)`);
    if (!pattern.test(out)) throw new Error(`README.md has no <!-- ${name}:start --> … <!-- ${name}:end --> section`);
    out = out.replace(pattern, (_m, start: string, end: string) => `${start}${render()}${end}`);
  }
  return out;
}

if (require.main === module) {
  writeGenerated(README, regenerate(readFileSync(README, 'utf8')));
}
