/**
 * Every example in README.md is real output of the current code (scripts/readme-examples.ts writes them with
 * `npm run examples`). This runs every example's commands verbatim, in README order, against the built local host
 * on a fresh Azurite, and fails when an output no longer has the shape the README shows. Needs the build and curl.
 */
import { readFileSync } from 'node:fs';
import {
  developmentKeys,
  exampleProblems,
  generate,
  normalizeLine,
  parseExamples,
  README,
  render,
  shapeProblems,
  writeOutputs,
} from '../../scripts/readme-examples';

const readme = readFileSync(README, 'utf8');

describe('the example blocks', () => {
  const examples = parseExamples(readme);

  it('cover the Quick start walkthrough and every route example, each with an output block', () => {
    expect(examples.map((e) => e.name)).toEqual(
      expect.arrayContaining(['walkthrough-health', 'walkthrough-job', 'walkthrough-poll', 'walkthrough-result']),
    );
    expect(examples.length).toBeGreaterThanOrEqual(20);
    for (const e of examples)
      expect([e.name, e.output?.lang]).toEqual([e.name, expect.stringMatching(/^(json|text)$/)]);
    // no example names a file the project does not have, as cat.jpg and dog.png once did
    for (const e of examples)
      for (const [, file] of e.commands.matchAll(/[=@]@?([\w./-]+\.(?:jpe?g|png|webp|gif|tiff?|avif))/g))
        expect(file).toMatch(/^samples\/sample_/);
  });

  it('send the key on every call to a keyed route, the development keys npm start prints', () => {
    const { functionKey, masterKey } = developmentKeys();
    expect(examples[0].commands).toContain(`export KEY=${functionKey} MASTER_KEY=${masterKey}`);
    const calls = examples.flatMap((e) => e.commands.split('\n').filter((l) => /curl .*localhost:7071\/api\//.test(l)));
    const keyless = calls.filter(
      (l) => !/localhost:7071\/api\/(health|filters)\b/.test(l) && !l.includes('x-functions-key'),
    );
    expect(keyless).toEqual([]);
    // the master key only for admin routes: requeue and deleting a job
    expect(calls.filter((l) => l.includes('$MASTER_KEY'))).toEqual([
      expect.stringMatching(/\/requeue/),
      expect.stringMatching(/-X DELETE localhost:7071\/api\/jobs\//),
    ]);
  });

  it('are rewritten in place, commands kept, and writing twice changes nothing', () => {
    const outputs = new Map(examples.map((e) => [e.name, e.output!.lang === 'json' ? '{"a": 1}' : 'line']));
    const once = writeOutputs(readme, outputs);
    expect(parseExamples(once).map((e) => e.commands)).toEqual(examples.map((e) => e.commands));
    expect(writeOutputs(once, outputs)).toBe(once);
    expect(once.replace(/<!-- example:[\s\S]*?:end -->/g, '')).toBe(
      readme.replace(/<!-- example:[\s\S]*?:end -->/g, ''),
    );
  });
});

describe('drift detection', () => {
  it('names keys, types, HTTP statuses and problem types that changed, and ignores volatile values', () => {
    const shown = { type: 'urn:x:not_ready', status: 409, job_id: 'a', tasks: [{ n: 1, at: null }] };
    expect(shapeProblems(shown, { ...shown, job_id: 'b', tasks: [{ n: 2, at: 'now' }, { n: 3 }] })).toEqual([]);
    expect(shapeProblems(shown, { ...shown, status: 503, type: 'urn:x:storage_unavailable' })).toEqual([
      '$.type: the README shows urn:x:not_ready, the app returns urn:x:storage_unavailable',
      '$.status: the README shows 409, the app returns 503',
    ]);
    expect(shapeProblems(shown, { type: shown.type, status: 409, tasks: 'none', extra: 1 })).toEqual([
      '$.job_id: in the README, not returned by the app',
      '$.extra: returned by the app, missing from the README',
      '$.tasks: the README shows array, the app returns string',
    ]);
  });

  it('compares text line by line with ids, times and figures left out but HTTP statuses kept', () => {
    expect(normalizeLine('200 image/jpeg 43692 bytes')).toBe('200 image/jpeg <n> bytes');
    expect(normalizeLine('job 6f013b21-480b-4d00-8687-d0d9694e7a7a: succeeded at 2026-11-23T13:21:32.827Z')).toBe(
      'job <id>: succeeded at <time>',
    );
    expect(normalizeLine('image_pipeline_oldest_message_age_seconds{capability="heavy"} NaN')).toBe(
      normalizeLine('image_pipeline_oldest_message_age_seconds{capability="heavy"} 8'),
    );
    const example = { name: 'x', commands: 'curl', output: { lang: 'text', text: '200 image/jpeg 5 bytes' } };
    expect(exampleProblems(example, '200 image/jpeg 7 bytes\n')).toEqual([]);
    expect(exampleProblems(example, '404 application/problem+json 120 bytes\n')).toHaveLength(1);
    expect(exampleProblems(example, '{"status": 200}')).toEqual([
      "README example 'x': the README shows text, the commands print json",
    ]);
    expect(render('x', '{"a":1}\n')).toEqual({ lang: 'json', text: '{\n  "a": 1\n}' });
  });
});

describe('against the running app', () => {
  it('every example runs verbatim and prints what the README shows', async () => {
    const { outputs, problems } = await generate(readme);
    expect(problems).toEqual([]);
    expect(outputs.get('walkthrough-poll')).toMatch(/^job [0-9a-f-]{36}: succeeded$/m);
    expect(outputs.get('walkthrough-result')).toMatch(/^200 image\/jpeg \d+ bytes$/m);
    expect(JSON.parse(outputs.get('dead-letters')!).capabilities[0].count).toBeGreaterThan(0);
  }, 150000);
});
