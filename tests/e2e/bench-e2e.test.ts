/**
 * `npm run bench -- e2e` as a smoke test on a tiny set: it runs raw and queued through the built local host and
 * Azurite, and reports every figure of the budget. No timing is asserted (that is the bench's output, not a test);
 * the counts it reports are: every task is one message sent, received, deleted, one input read and one result
 * written.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { main } from '../../scripts/bench';
import { machineBusyMs, processCpuMs, requestKind } from '../../scripts/bench/e2e';
import { photo } from '../helpers/images';
import { captureConsole } from '../helpers/console';

describe('npm run bench -- e2e', () => {
  let dir: string;
  const { stdout, stderr } = captureConsole();

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bench-e2e-'));
    await writeFile(path.join(dir, 'a.jpg'), await photo(96, 64, 'jpeg'));
    await writeFile(path.join(dir, 'b.png'), await photo(64, 96, 'png'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('--json: raw and queued throughput, the CPU budget, requests by kind and RSS for both pipelines', async () => {
    expect(await main(['e2e', '--images', dir, '--tasks', '4', '--rounds', '1', '--json'])).toBe(0);
    expect(stdout).toHaveLength(1);
    const result = JSON.parse(stdout[0]) as {
      tasks: number;
      images: string[];
      worker_tasks_per_min: string;
      host: { peak_rss_mb: number; settings: Record<string, string> };
      pipelines: {
        pipeline: string;
        capability: string;
        ratio: number;
        requests_per_task: Record<string, number>;
        rounds: {
          raw_tasks_per_s: number;
          queued_tasks_per_s: number;
          first_task_ms: number;
          wall_ms: number;
          cpu_ms_per_task: Record<string, number>;
          rss_mb: { start: number; peak: number; end: number; quarters: number[] };
        }[];
      }[];
    };
    expect(result.tasks).toBe(4);
    expect(result.images).toEqual(['a.jpg 96×64', 'b.png 64×96']);
    expect(result.pipelines.map((p) => [p.pipeline, p.capability])).toEqual([
      ['light', 'light'],
      ['heavy', 'heavy'],
    ]);
    for (const p of result.pipelines) {
      const [round] = p.rounds;
      expect(round.raw_tasks_per_s).toBeGreaterThan(0);
      expect(round.queued_tasks_per_s).toBeGreaterThan(0);
      expect(p.ratio).toBeGreaterThan(0);
      expect(round.first_task_ms).toBeLessThanOrEqual(round.wall_ms);
      expect(Object.keys(round.cpu_ms_per_task).sort()).toEqual(['bench', 'idle', 'other', 'storage', 'worker']);
      for (const ms of Object.values(round.cpu_ms_per_task)) expect(ms).toBeGreaterThanOrEqual(0);
      expect(round.cpu_ms_per_task.worker).toBeGreaterThan(0);
      expect(round.cpu_ms_per_task.storage).toBeGreaterThan(0);
      // per task: its message is sent, deleted; its input read once and its result written once; its record
      // claimed, then marked succeeded (two Merge writes, alone or in a transaction with others of the job),
      // and never read: the message carries its ETag
      const queue = `tasks-${p.capability}`;
      expect(p.requests_per_task).toMatchObject({
        [`queue send (${queue})`]: 1,
        [`queue delete (${queue})`]: 1,
        'blob read (images)': 1,
        'blob write (processed)': 1,
      });
      // the job's create is one transaction; the 8 writes take at most 8 requests, fewer when coalesced
      const writes = (p.requests_per_task['table merge (tasks)'] ?? 0) + (p.requests_per_task['table batch'] ?? 0);
      expect(writes * result.tasks).toBeGreaterThanOrEqual(2);
      expect(writes * result.tasks).toBeLessThanOrEqual(1 + 2 * result.tasks);
      expect(p.requests_per_task[`queue receive (${queue})`]).toBeGreaterThan(0);
      // no read of a task record (the job's status poll reads its callback row: not the task path)
      expect(Object.keys(p.requests_per_task).filter((k) => k.startsWith('table read (tasks)'))).toEqual([]);
      expect(round.rss_mb.start).toBeGreaterThan(0);
      expect(round.rss_mb.peak).toBeGreaterThanOrEqual(round.rss_mb.start);
      expect(round.rss_mb.quarters).toHaveLength(3);
    }
    expect(result.host.peak_rss_mb).toBeGreaterThan(0);
    // the host runs with the allocator npm start gives it (read from its /proc environ)
    expect(result.host.settings).toMatchObject({ MALLOC_ARENA_MAX: '2' });
    expect(result.worker_tasks_per_min).toMatch(/^light=\d+,heavy=\d+$/);
  }, 120000);

  it('prints the tables and the WORKER_TASKS_PER_MIN it measured without --json', async () => {
    expect(await main(['e2e', '--images', dir, '--tasks', '2', '--rounds', '1', '--pipelines', 'heavy'])).toBe(0);
    const text = stdout.join('\n');
    expect(text).toContain('queued ÷ raw');
    expect(text).toMatch(/heavy \(blur\)/);
    expect(text).toContain('blob read');
    expect(text).toMatch(/WORKER_TASKS_PER_MIN=heavy=\d+/);
    expect(stderr.join('\n')).toMatch(/heavy round 1: raw [\d.]+ tasks\/s, queued [\d.]+ tasks\/s/);
  }, 120000);

  it('refuses bad options with what it expected and exit code 2', async () => {
    expect(await main(['e2e', '--tasks', '0'])).toBe(2);
    expect(await main(['e2e', '--pipelines', 'medium'])).toBe(2);
    expect(await main(['e2e', '--rounds', 'x'])).toBe(2);
    expect(stderr.join('\n')).toContain("expected --tasks to be an integer between 1 and 100000 but received '0'");
    expect(stderr.join('\n')).toContain("expected --pipelines among light, heavy but received 'medium'");
    expect(stderr.join('\n')).toContain("expected --rounds to be an integer between 1 and 100 but received 'x'");
  });
});

describe('bench measurements', () => {
  it("classifies Azurite's access-log lines by service and operation", () => {
    const line = (method: string, url: string) =>
      `127.0.0.1 - - [02/Dec/2026:04:20:00 +0000] "${method} ${url} HTTP/1.1" 200 -`;
    const cases: [string, string, string][] = [
      [
        'GET',
        '/devstoreaccount1/b1-tasks-light/messages?numofmessages=4&visibilitytimeout=600',
        'queue receive (tasks-light)',
      ],
      ['POST', '/devstoreaccount1/b1-tasks-light/messages', 'queue send (tasks-light)'],
      ['DELETE', '/devstoreaccount1/b1-tasks-light/messages/abc?popreceipt=x', 'queue delete (tasks-light)'],
      ['PUT', '/devstoreaccount1/b1-tasks-light-poison/messages/abc?popreceipt=x', 'queue update (tasks-light-poison)'],
      ['GET', "/devstoreaccount1/b1tasks(PartitionKey='j',RowKey='t')", 'table read (tasks)'],
      ['PUT', "/devstoreaccount1/b1workers(PartitionKey='w',RowKey='w')", 'table update (workers)'],
      ['MERGE', "/devstoreaccount1/b1tasks(PartitionKey='j',RowKey='t')", 'table merge (tasks)'],
      ['PATCH', "/devstoreaccount1/b1tasks(PartitionKey='j',RowKey='t')", 'table merge (tasks)'],
      ['POST', '/devstoreaccount1/$batch', 'table batch'],
      ['POST', '/devstoreaccount1/Tables', 'table create'],
      ['GET', "/devstoreaccount1/b1tasks()?$filter=PartitionKey%20eq%20'j'", 'table query (tasks)'],
      ['GET', '/devstoreaccount1/b1-images/a.jpg', 'blob read (images)'],
      ['HEAD', '/devstoreaccount1/b1-images/a.jpg', 'blob properties (images)'],
      ['PUT', '/devstoreaccount1/b1-processed/t.jpg', 'blob write (processed)'],
      ['PUT', '/devstoreaccount1/b1-images?restype=container', 'blob container put (images)'],
      ['GET', '/devstoreaccount1/b1-tasks-light?comp=metadata', 'queue properties (tasks-light)'],
      ['PUT', '/devstoreaccount1/b1-tasks-light', 'queue create (tasks-light)'],
      ['POST', '/devstoreaccount1/b1workers', 'table insert (workers)'],
      ['GET', '/devstoreaccount1/?comp=list', 'service get'],
    ];
    for (const [method, url, kind] of cases)
      expect([method, url, requestKind(line(method, url), 'b1')]).toEqual([method, url, kind]);
    // without a namespace the resource keeps its whole name
    expect(requestKind(line('GET', '/devstoreaccount1/images/a.jpg'))).toBe('blob read (images)');
    expect(requestKind('Azurite Blob service is starting on 127.0.0.1:10000')).toBeUndefined();
  });

  it('reads CPU time from /proc for a process and for the machine', () => {
    const before = processCpuMs(process.pid);
    const machine = machineBusyMs();
    for (let spin = Date.now(); Date.now() - spin < 100;);
    expect(processCpuMs(process.pid)).toBeGreaterThan(before);
    expect(machineBusyMs()).toBeGreaterThan(machine);
  });
});
