/**
 * What a client sees of retention: a result past RETENTION_RESULTS_DAYS, or whose blob is gone, answers 410
 * with a problem that says why (never a 302 to a link that 404s, never a 500); a task whose record the
 * retention timer removed answers 404 saying how long records are kept.
 */
import { loadSettings } from '../../shared/config';
import { taskRoutes } from '../../shared/http/tasks';
import { applyRetention } from '../../shared/tasks/retention';
import { job } from '../helpers/aged-jobs';
import { call, type CallResult } from '../helpers/http';
import { useAzurite } from '../helpers/storage';

const env = useAzurite();
const DAY = 24 * 60 * 60 * 1000;
const settings = loadSettings({});

function expectProblem(res: CallResult, status: number, code: string, detail: RegExp) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.json).toMatchObject({ type: `urn:image-pipeline:problem:${code}`, status, detail: expect.any(String) });
  expect(res.json.detail).toMatch(detail);
}

it('answers 410 for a result older than RETENTION_RESULTS_DAYS, and gives it no link', async () => {
  const storage = await env.storage();
  const routes = taskRoutes(() => storage, settings);
  const [old] = await job(storage, ['succeeded'], [new Date(Date.now() - 31 * DAY)]);
  const [fresh] = await job(storage, ['succeeded'], [new Date(Date.now() - 29 * DAY)]);
  const params = (t: { task_id: string }) => ({ params: { task_id: t.task_id } });

  for (const path of ['/result', '/result?download=stream'])
    expectProblem(
      await call(routes.getTaskResult, { path, ...params(old) }),
      410,
      'result_expired',
      new RegExp(
        `^The result of task ${old.task_id} is no longer stored: results are kept 30 days \\(RETENTION_RESULTS_DAYS\\)`,
      ),
    );
  expect((await call(routes.getTaskResult, { path: '/result', ...params(fresh) })).status).toBe(302);

  // the record stays readable; its result_url is the route (which says 410), not a signed link
  const record = await call(routes.getTask, { path: '', ...params(old) });
  expect(record.status).toBe(200);
  expect(record.json.result_url).toBe(`http://localhost:7071/api/tasks/${old.task_id}/result`);
  expect((await call(routes.getTask, { path: '', ...params(fresh) })).json.result_url).toMatch(/[?&]sig=/);
});

it('answers 410 when the result blob is gone before its time (a lifecycle rule, a hand delete)', async () => {
  const storage = await env.storage();
  const routes = taskRoutes(() => storage, settings);
  const [task] = await job(storage, ['succeeded'], [new Date()]);
  await storage.processed.deleteBlob(task.output!.blob);
  expectProblem(
    await call(routes.getTaskResult, { path: '/result?download=stream', params: { task_id: task.task_id } }),
    410,
    'result_expired',
    /no longer stored/,
  );
});

it('answers 404 for a task the retention timer removed, saying how long records are kept', async () => {
  const storage = await env.storage();
  const routes = taskRoutes(() => storage, settings);
  const [task] = await job(storage, ['failed'], [new Date()]);
  expect((await call(routes.getTask, { path: '', params: { task_id: task.task_id } })).status).toBe(200);

  const report = await applyRetention(storage, settings, new Date(Date.now() + 31 * DAY));
  expect(report.sweeps.find((s) => s.name === 'task records')).toMatchObject({ deleted: 1 });
  expectProblem(
    await call(routes.getTask, { path: '', params: { task_id: task.task_id } }),
    404,
    'not_found',
    new RegExp(
      `^No task ${task.task_id} \\(task records are kept 30 days after their job ended: RETENTION_TASKS_DAYS\\)$`,
    ),
  );
});
