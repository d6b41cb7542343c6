/**
 * The floors of shared/: each folder may import its own floor and the floors below it, never one
 * above. shared/ as a whole never imports functions/ or scripts/. CONTRIBUTING.md draws the same map.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '../..');
const SHARED = path.join(ROOT, 'shared');

/** Lowest first. The files directly in shared/ are the ground floor. */
const FLOORS = ['.', 'imaging', 'storage', 'tasks', 'metrics', 'http'] as const;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(file);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [file] : [];
  });
}

/** The floor of a file under shared/: its first folder, or the ground floor for shared/*.ts. */
function floorOf(file: string): number {
  const relative = path.relative(SHARED, file).split(path.sep);
  const floor = relative.length === 1 ? '.' : relative[0];
  const rank = FLOORS.indexOf(floor as (typeof FLOORS)[number]);
  if (rank < 0)
    throw new Error(`shared/${relative.join('/')} is in no floor: add '${floor}' to FLOORS (and to CONTRIBUTING.md)`);
  return rank;
}

interface Edge {
  readonly from: string;
  readonly to: string;
}

/** Every relative import (import, export … from, require) of every file under shared/. */
function importsOf(files: readonly string[]): Edge[] {
  return files.flatMap((from) => {
    const { importedFiles } = ts.preProcessFile(readFileSync(from, 'utf8'), true, true);
    return importedFiles
      .filter((i) => i.fileName.startsWith('.'))
      .map((i) => ({ from, to: path.resolve(path.dirname(from), i.fileName) }));
  });
}

const describeEdge = (e: Edge) => `${path.relative(ROOT, e.from)} imports ${path.relative(ROOT, e.to)}`;

function upwardImports(edges: readonly Edge[]): string[] {
  return edges
    .filter((e) => e.to.startsWith(SHARED + path.sep) && floorOf(e.to) > floorOf(e.from))
    .map((e) => `${describeEdge(e)} (${FLOORS[floorOf(e.from)]} → ${FLOORS[floorOf(e.to)]})`);
}

describe('import floors of shared/', () => {
  const edges = importsOf(sourceFiles(SHARED));

  it('finds the imports it checks', () => {
    expect(edges.length).toBeGreaterThan(100);
    expect(edges.map(describeEdge)).toContain('shared/tasks/worker.ts imports shared/imaging/pipeline');
  });

  it('has no import from a lower floor to a higher one', () => {
    expect(upwardImports(edges)).toEqual([]);
  });

  it('never imports functions/ or scripts/', () => {
    const outside = edges.filter(
      (e) => !e.to.startsWith(SHARED + path.sep) && !e.to.startsWith(path.join(ROOT, 'package.json')),
    );
    expect(outside.map(describeEdge)).toEqual([]);
  });

  it('would catch an upward import', () => {
    const planted = { from: path.join(SHARED, 'imaging', 'pipeline.ts'), to: path.join(SHARED, 'tasks', 'spec') };
    expect(upwardImports([planted])).toEqual([
      'shared/imaging/pipeline.ts imports shared/tasks/spec (imaging → tasks)',
    ]);
  });
});
