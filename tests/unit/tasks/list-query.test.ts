/**
 * GET /api/jobs and DELETE /api/jobs/{id} query parameters a client gets wrong without noticing: a `since` that
 * names no real time (Date.parse rolls 2026-02-30 over to March 2) and a parameter given twice (which one
 * counts would be a guess). Each is a 400 naming the parameter, what it takes and what came.
 */
import { InvalidArgumentError } from 'commander';
import { sinceOption } from '../../../scripts/cli/commands/jobs';
import type { ValidationError } from '../../../shared/errors';
import { jobActionRoutes, parseListQuery } from '../../../shared/http/job-actions';
import type { Storage } from '../../../shared/storage/clients';
import { call } from '../../helpers/http';

/** Storage that fails any use: a refused request must not get as far as reading anything. */
const unusedStorage = new Proxy(
  {},
  {
    get: () => {
      throw new Error('storage was used');
    },
  },
) as Storage;

const problemsOf = (query: string) => {
  try {
    parseListQuery(new URLSearchParams(query));
  } catch (err) {
    return (err as ValidationError).errors.map((e) => [e.field, e.message]);
  }
  return [];
};

describe('since', () => {
  it.each([
    '2026-02-30',
    '2026-02-29T00:00:00Z', // 2026 is not a leap year
    '2026-04-31T10:00:00Z',
    '2026-13-01',
    '2026-00-10',
    '2026-12-00',
    '2026-12-02T24:00:00Z',
    '2026-12-02T10:60:00Z',
    '2026-12-02T10:00:60Z',
    '2026-12-02T10:00:00+24:00',
    '2026-12-02T10:00:00+02:60',
  ])('refuses %s, which names no real time', (since) => {
    expect(problemsOf(`since=${encodeURIComponent(since)}`)).toEqual([
      ['query.since', expect.stringContaining('Expected an ISO 8601 time such as 2026-01-31T08:00:00Z')],
    ]);
  });

  it.each([
    ['2028-02-29', '2028-02-29T00:00:00.000Z'],
    ['2026-12-31T23:59:59Z', '2026-12-31T23:59:59.000Z'],
    ['2026-12-02T12:26:48.5+02:00', '2026-12-02T10:26:48.500Z'],
    ['2026-12-02T00:30-01:00', '2026-12-02T01:30:00.000Z'],
  ])('takes %s as %s', (since, iso) => {
    expect(parseListQuery(new URLSearchParams(`since=${encodeURIComponent(since)}`)).since?.toISOString()).toBe(iso);
  });

  it('is checked by the CLI as the API checks it: a time the API refuses is a bad command line (exit 2)', () => {
    expect(sinceOption('2026-12-02T10:00:00Z')).toBe('2026-12-02T10:00:00Z');
    expect(() => sinceOption('2026-02-30')).toThrow(InvalidArgumentError);
    expect(() => sinceOption('2026-12-02T10:26:48')).toThrow(/expected an ISO 8601 time/); // no zone
  });
});

describe('a parameter given twice', () => {
  it('is refused for each of status, since, limit and continuation, naming the values', () => {
    expect(problemsOf('status=failed&status=succeeded&limit=1&limit=2&since=2026-01-01&since=2026-01-02')).toEqual([
      [
        'query.status',
        "Expected one value (the parameter once) for query.status but received 2 values: 'failed', 'succeeded'",
      ],
      [
        'query.since',
        "Expected one value (the parameter once) for query.since but received 2 values: '2026-01-01', '2026-01-02'",
      ],
      ['query.limit', "Expected one value (the parameter once) for query.limit but received 2 values: '1', '2'"],
    ]);
    expect(problemsOf('continuation=a&continuation=b')).toEqual([
      ['query.continuation', expect.stringContaining('received 2 values')],
      ['query.continuation', expect.stringContaining('Expected the continuation token')],
    ]);
  });

  it('is refused for DELETE ?force=true&force=false before anything is read', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    const res = await call(jobActionRoutes(() => unusedStorage).deleteJob, {
      method: 'DELETE',
      path: `/api/jobs/${id}?force=true&force=false`,
      params: { job_id: id },
    });
    expect(res.status).toBe(400);
    expect(res.json.detail).toContain(
      "Expected one value (the parameter once) for query.force but received 2 values: 'true', 'false'",
    );
  });
});

it('POST /api/jobs/{id}/retry names a query parameter it does not take instead of ignoring it', async () => {
  const id = '00000000-0000-4000-8000-000000000000';
  const res = await call(jobActionRoutes(() => unusedStorage).retryJob, {
    method: 'POST',
    path: `/api/jobs/${id}/retry?only=failed`,
    params: { job_id: id },
  });
  expect(res.status).toBe(400);
  expect(res.json.errors).toEqual([expect.objectContaining({ field: 'query.only', expected: 'one of code' })]);
});
