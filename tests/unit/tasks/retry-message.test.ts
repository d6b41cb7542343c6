/**
 * A retried task's message says how many attempts its record already counts (`attempts`), beside the
 * record's new ETag, so the worker's claim counts on from there; a message without it counts from 0.
 */
import { ValidationError } from '../../../shared/errors';
import { normalizeTaskSpec } from '../../../shared/imaging/spec';
import { buildTaskMessage, parseTaskMessage } from '../../../shared/tasks/message';

const task = {
  task_id: '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b_0001',
  job_id: '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b',
  image: 'a.png',
};
const spec = normalizeTaskSpec({ filters: ['grayscale'] });
const at = new Date('2026-12-02T07:00:00Z');

describe('attempts in a task message', () => {
  it('travels when the record has attempts, and is left out for a new task', () => {
    const retried = buildTaskMessage(task, spec, at, '"etag-2"', 2);
    expect(retried).toMatchObject({ etag: '"etag-2"', attempts: 2 });
    expect(parseTaskMessage(JSON.stringify(retried))).toMatchObject({ etag: '"etag-2"', attempts: 2 });
    const created = buildTaskMessage(task, spec, at, '"etag-1"');
    expect('attempts' in created).toBe(false);
    expect('attempts' in parseTaskMessage(JSON.stringify(created))).toBe(false);
  });

  it.each([-1, 1.5, '2', null])('refuses attempts %p, saying what it takes', (attempts) => {
    const message = { ...buildTaskMessage(task, spec, at, '"e"'), attempts };
    const text = JSON.stringify(message);
    let thrown: unknown;
    try {
      parseTaskMessage(Buffer.from(text));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ValidationError);
    expect((thrown as ValidationError).errors.map((e) => e.field)).toEqual(['attempts']);
    expect((thrown as ValidationError).message).toMatch(/Expected a whole number of attempts, 0 or more for attempts/);
  });
});
