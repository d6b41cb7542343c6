/**
 * A parser of the Prometheus text exposition format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/)
 * for tests: every line against the grammar, one HELP and TYPE per family before its samples, families contiguous,
 * no duplicate series; checkHistogram adds a histogram's rules.
 */
const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*';
const LABEL_VALUE = '"(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const FLOAT = '(?:[+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?|NaN|[+-]Inf)';
const SAMPLE = new RegExp(
  `^(${NAME})(?:\\{((?:${LABEL}=${LABEL_VALUE})(?:,${LABEL}=${LABEL_VALUE})*,?)?\\})? (${FLOAT})(?: -?\\d+)?$`,
);
const HELP = new RegExp(`^# HELP (${NAME}) ((?:[^\\\\\\n]|\\\\[\\\\n])*)$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);

export interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}
export interface Family {
  help?: string;
  type?: string;
  samples: Sample[];
}

const parseValue = (v: string) => (v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v));

/** Parses the text or throws naming the line that breaks the format. */
export function parseExposition(text: string): Map<string, Family> {
  expect(text.endsWith('\n')).toBe(true);
  const families = new Map<string, Family>();
  const seriesSeen = new Set<string>();
  let current: string | undefined;
  const familyOf = (sample: string): string => {
    for (const suffix of ['_bucket', '_sum', '_count']) {
      const base = sample.slice(0, -suffix.length);
      if (sample.endsWith(suffix) && families.get(base)?.type === 'histogram') return base;
    }
    return sample;
  };
  for (const [i, line] of text.slice(0, -1).split('\n').entries()) {
    const where = `line ${i + 1}: ${line}`;
    if (line === '') continue;
    const help = HELP.exec(line);
    const type = TYPE.exec(line);
    if (help || type) {
      const name = (help ?? type)![1];
      const family = families.get(name) ?? { samples: [] };
      if (family.samples.length) throw new Error(`${where}: metadata after the family's samples`);
      if (help) {
        if (family.help !== undefined) throw new Error(`${where}: a second HELP`);
        family.help = help[2];
      } else {
        if (family.type !== undefined) throw new Error(`${where}: a second TYPE`);
        family.type = type![2];
      }
      families.set(name, family);
      current = name;
      continue;
    }
    if (line.startsWith('#')) continue; // a comment
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`${where}: not a sample line of the text format`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(new RegExp(`(${LABEL})=(${LABEL_VALUE})`, 'g'))) {
      if (k in labels) throw new Error(`${where}: label ${k} twice`);
      if (k.startsWith('__')) throw new Error(`${where}: label ${k} is reserved`);
      labels[k] = JSON.parse(v) as string; // the format's three escapes are JSON's
    }
    const name = familyOf(m[1]);
    if (name !== current) throw new Error(`${where}: a sample of ${name} outside its family's block`);
    const series = `${m[1]}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seriesSeen.has(series)) throw new Error(`${where}: a duplicate series`);
    seriesSeen.add(series);
    families.get(name)!.samples.push({ name: m[1], labels, value: parseValue(m[3]) });
  }
  return families;
}

/** The rules a histogram family obeys, per label set (without `le`). */
export function checkHistogram(name: string, family: Family): void {
  const groups = new Map<string, Sample[]>();
  for (const s of family.samples) {
    const { le: _le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  for (const [key, samples] of groups) {
    const buckets = samples.filter((s) => s.name === `${name}_bucket`);
    const count = samples.filter((s) => s.name === `${name}_count`);
    const sum = samples.filter((s) => s.name === `${name}_sum`);
    expect([key, buckets.length > 0, count.length, sum.length]).toEqual([key, true, 1, 1]);
    expect(buckets.every((b) => 'le' in b.labels)).toBe(true);
    const les = buckets.map((b) => parseValue(b.labels.le));
    expect(les[les.length - 1]).toBe(Infinity);
    for (let i = 1; i < buckets.length; i++) {
      expect(les[i]).toBeGreaterThan(les[i - 1]);
      expect(buckets[i].value).toBeGreaterThanOrEqual(buckets[i - 1].value);
    }
    expect(buckets[buckets.length - 1].value).toBe(count[0].value);
    expect(sum[0].value).toBeGreaterThanOrEqual(0);
  }
}
