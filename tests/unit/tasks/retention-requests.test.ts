/**
 * What the task sweep asks of storage, counted in Azurite's access log (one line per request, as the bench counts
 * requests: scripts/bench/e2e.ts): on a day it walks the job index it reads two key ranges of the index (the
 * cutoff day up to the cutoff, the days before it) and the partitions of the jobs in them, and never queries
 * Table `tasks` across partitions, so newer records are not read at all. The scan (every
 * RETENTION_TASKS_SCAN_DAYS-th day, and before the index existed every run) queries every record of Table `tasks`:
 * in Azure a full table scan.
 */
import { randomUUID } from 'node:crypto';
import { startAzurite, type RunningAzurite } from '../../../scripts/azurite';
import { loadSettings } from '../../../shared/config';
import { Storage } from '../../../shared/storage/clients';
import { resourceNames } from '../../../shared/storage/names';
import { partitionOf, rowOf } from '../../../shared/tasks/job-index';
import { applyRetention, type SweepReport } from '../../../shared/tasks/retention';
import { job, type Outcome } from '../../helpers/aged-jobs';
import { uniqueNamespace } from '../../helpers/storage';

const DAY = 24 * 60 * 60 * 1000;
/** Noon UTC 40 days from now: the cutoff (30 days) is noon of a day, so a job an hour after it is on that day. */
const NOW = new Date(Math.floor((Date.now() + 40 * DAY) / DAY) * DAY + DAY / 2);
const ago = (days: number) => new Date(NOW.getTime() - days * DAY);

interface Request {
  readonly method: string;
  /** The container or table (with `()` for a query, `(PartitionKey=…,RowKey=…)` for one entity), or `$batch`. */
  readonly resource: string;
  readonly filter?: string;
}

let azurite: RunningAzurite;
const log: string[] = [];
beforeAll(async () => {
  azurite = await startAzurite({ accessLog: (line) => log.push(line) });
}, 30000);
afterAll(async () => {
  await azurite?.stop();
});

function parse(line: string): Request | undefined {
  const match = /"([A-Z]+) ([^ ]+) HTTP\/[\d.]+"/.exec(line);
  if (!match) return undefined;
  const [pathname, query = ''] = match[2].split('?');
  const resource = decodeURIComponent(pathname.split('/').filter(Boolean)[1] ?? '');
  return { method: match[1], resource, filter: new URLSearchParams(query).get('$filter') ?? undefined };
}

/**
 * The requests `run` makes. Azurite logs a request after answering it, so a query no one else makes marks the end
 * (and the start): once its line is in, so is every line of a request answered before it.
 */
async function requestsOf(storage: Storage, run: () => Promise<unknown>): Promise<Request[]> {
  const mark = async () => {
    const id = randomUUID();
    for await (const _ of storage.workers.listEntities({ queryOptions: { filter: `PartitionKey eq '${id}'` } }));
    for (const deadline = Date.now() + 10000; !log.some((l) => l.includes(id));) {
      if (Date.now() > deadline) throw new Error(`Azurite did not log the request ${id}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return log.findIndex((l) => l.includes(id));
  };
  const start = await mark();
  await run();
  const end = await mark();
  return log
    .slice(start + 1, end)
    .map(parse)
    .filter((r) => r !== undefined);
}

async function populate(storage: Storage) {
  const ended = (n: number, at: Date, outcome: Outcome = 'succeeded') =>
    job(storage, Array<Outcome>(n).fill(outcome), Array<Date>(n).fill(at));
  const expired = [await ended(3, ago(40)), await ended(2, ago(40)), await ended(1, ago(35))];
  const running = await job(storage, ['failed', 'processing'], [ago(40), ago(40)]);
  // on the cutoff day, an hour after the cutoff: the range of that day stops at the cutoff, before its row
  const cutoffDay = await job(storage, ['failed'], [ago(30 - 1 / 24)]);
  // failed, which is one write a task (a success is three: claim, result, record)
  const recent = [
    await ended(40, ago(10), 'failed'),
    await ended(60, ago(0.1), 'failed'),
    await ended(60, ago(0.05), 'failed'),
  ];
  return { expired, running, cutoffDay, recent };
}

const jobIdOf = (tasks: readonly { job_id: string }[]) => tasks[0].job_id;
const taskSweep = (sweeps: readonly SweepReport[]) => sweeps.find((s) => s.name === 'task records')!;

/** The storage requests of one retention run at NOW, and what its task sweep reported. */
async function countRun(scanDays: string) {
  const storage = new Storage(azurite.connectionString, resourceNames(uniqueNamespace()));
  await storage.ensureResources();
  const jobs = await populate(storage);
  // results by age are another sweep: off, so every result delete here is the task sweep's
  const settings = loadSettings({ RETENTION_TASKS_SCAN_DAYS: scanDays, RETENTION_RESULTS_DAYS: '0' });
  const before = { tasks: (await keysOf(storage.tasks)).map((k) => k.pk), index: await keysOf(storage.jobs) };
  let sweep: SweepReport | undefined;
  const requests = await requestsOf(storage, async () => {
    sweep = taskSweep((await applyRetention(storage, settings, NOW)).sweeps);
  });
  const { tasksTable, jobsTable, processed } = storage.names;
  const queriesOf = (table: string) => requests.filter((r) => r.method === 'GET' && r.resource === `${table}()`);
  const taskQueries = queriesOf(tasksTable);
  const partitionOfQuery = (r: Request) => /^PartitionKey eq '([^']+)'$/.exec(r.filter ?? '')?.[1];
  return {
    storage,
    jobs,
    sweep: sweep!,
    /** Jobs whose records were read, one partition query each. */
    partitionsRead: taskQueries.map(partitionOfQuery).filter((p) => p !== undefined),
    /** Queries of Table `tasks` across partitions. */
    scans: taskQueries.filter((r) => partitionOfQuery(r) === undefined).map((r) => r.filter),
    indexQueries: queriesOf(jobsTable).map((r) => r.filter),
    indexDeletes: requests.filter((r) => r.method === 'DELETE' && r.resource.startsWith(`${jobsTable}(`)).length,
    batches: requests.filter((r) => r.resource === '$batch').length,
    resultDeletes: requests.filter((r) => r.method === 'DELETE' && r.resource === processed).length,
    /** Every request of the task sweep (the tables it reads, its transactions and its result deletes). */
    total: requests.filter(
      (r) =>
        r.resource.startsWith(`${tasksTable}(`) ||
        r.resource.startsWith(`${jobsTable}(`) ||
        r.resource === '$batch' ||
        (r.method === 'DELETE' && r.resource === processed),
    ).length,
    /**
     * The entities the table service has to go through to answer the queries (the queries are cheap here, in Azurite;
     * in Azure a query costs by what it reads, and a scan of millions of records is thousands of pages).
     */
    entitiesRead:
      taskQueries
        .map(partitionOfQuery)
        .reduce((n, p) => n + (p ? before.tasks.filter((k) => k === p).length : before.tasks.length), 0) +
      queriesOf(jobsTable).reduce((n, r) => n + before.index.filter((row) => inRange(row, r.filter!)).length, 0),
    requests,
  };
}

async function keysOf(table: Storage['tasks']): Promise<{ pk: string; rk: string }[]> {
  const keys: { pk: string; rk: string }[] = [];
  for await (const e of table.listEntities({ queryOptions: { select: ['PartitionKey', 'RowKey'] } }))
    keys.push({ pk: e.partitionKey!, rk: e.rowKey! });
  return keys;
}

/** Whether an index row is in the range of one of the sweep's index queries. */
function inRange(row: { pk: string; rk: string }, filter: string): boolean {
  const day = /^PartitionKey eq '(\d{6})' and RowKey ge '([^']*)'$/.exec(filter);
  if (day) return row.pk === day[1] && row.rk >= day[2];
  const before = /^PartitionKey gt '(\d{6})'$/.exec(filter);
  if (before) return row.pk > before[1];
  throw new Error(`an index query this test does not know: ${filter}`);
}

it('walks the job index: two key ranges up to the cutoff, then only the partitions of the jobs in them', async () => {
  const run = await countRun('0');
  const { expired, running, cutoffDay, recent } = run.jobs;
  expect(run.sweep).toMatchObject({ found_by: 'job index', deleted: 6, results_deleted: 6, kept_running_jobs: 1 });
  // the cutoff day until the cutoff (the row key of its last millisecond and after), then the days before it
  const day = partitionOf(ago(30));
  expect(run.indexQueries).toEqual([
    `PartitionKey eq '${day}' and RowKey ge '${rowOf(new Date(ago(30).getTime() - 1), '')}'`,
    `PartitionKey gt '${day}'`,
  ]);
  expect(run.scans).toEqual([]);
  expect(run.partitionsRead.sort()).toEqual([...expired, running].map(jobIdOf).sort());
  // the jobs created after the cutoff: not one request names them (their records, their results, their rows)
  for (const id of [cutoffDay, ...recent].map(jobIdOf))
    expect(run.requests.filter((r) => `${r.resource} ${r.filter}`.includes(id))).toEqual([]);
  // one transaction and one index row per expired job
  expect({ batches: run.batches, indexDeletes: run.indexDeletes, resultDeletes: run.resultDeletes }).toEqual({
    batches: 3,
    indexDeletes: 3,
    resultDeletes: 6,
  });
  expect(run.total).toBe(2 + 4 + 3 + 3 + 6);
  // the index rows of the 4 jobs before the cutoff and their 8 records
  expect(run.entitiesRead).toBe(4 + 8);
});

it('the scan (every RETENTION_TASKS_SCAN_DAYS-th day) deletes the same but queries every task record, as every run did before', async () => {
  const run = await countRun('1');
  const { expired, running } = run.jobs;
  expect(run.sweep).toMatchObject({ found_by: 'task scan', deleted: 6, results_deleted: 6, kept_running_jobs: 1 });
  // one query across all partitions of Table tasks: Azure reads every record to answer it, the recent ones too
  expect(run.scans).toEqual([
    expect.stringMatching(/^\(status eq 'succeeded' or status eq 'failed'\) and completed_at lt/),
  ]);
  expect(run.indexQueries).toEqual([]);
  expect(run.partitionsRead.sort()).toEqual([...expired, running].map(jobIdOf).sort());
  expect(run.total).toBe(1 + 4 + 3 + 3 + 6);
  // every one of the 169 records (8 of the jobs before the cutoff, 161 after it), then the 8 again, job by job
  expect(run.entitiesRead).toBe(169 + 8);
});
