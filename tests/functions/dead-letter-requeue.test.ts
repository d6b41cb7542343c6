/**
 * POST /api/dead-letters/{capability}/{id}/requeue: one dead letter back to work, through real HttpRequests
 * against Azurite. A letter that cannot run stays and the problem says why; an unknown id is a 404.
 */
import { deadLetterRoutes } from '../../shared/http/dead-letters';
import { normalizeTaskSpec } from '../../shared/imaging/spec';
import { decodeMessageText } from '../../shared/storage/queue';
import { DeadLetterStore } from '../../shared/tasks/dead-letters';
import { createJob } from '../../shared/tasks/jobs';
import { TaskStore } from '../../shared/tasks/store';
import { giveUp } from '../helpers/dead-letters';
import { call, type CallResult } from '../helpers/http';
import { useAzurite } from '../helpers/storage';

const env = useAzurite();

function expectProblem(res: CallResult, status: number, code: string, detail: RegExp) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.json).toMatchObject({ type: `urn:image-pipeline:problem:${code}`, status, detail: expect.any(String) });
  expect(res.json.detail).toMatch(detail);
}

/** Two failed light tasks, each recorded as a dead letter (as the poison function does), the queue left empty. */
async function twoDeadLetters() {
  const storage = await env.storage();
  const job = await createJob(storage, ['a.jpg', 'b.jpg'], normalizeTaskSpec({ filters: ['flip'] }));
  const { receivedMessageItems } = await storage.queue('light').receiveMessages({ numberOfMessages: 32 });
  for (const m of receivedMessageItems) await giveUp(storage, m);
  const ids = job.tasks.map((t) => t.task_id);
  const tasks = new TaskStore(storage.tasks);
  const letters = new DeadLetterStore(storage.deadLetters);
  return { storage, routes: deadLetterRoutes(() => storage), tasks, letters, ids };
}

const requeue = (routes: ReturnType<typeof deadLetterRoutes>, capability: string, id: string) =>
  call(routes.requeueOne, {
    method: 'POST',
    path: `/api/dead-letters/${capability}/${id}/requeue`,
    params: { capability, id },
  });

it('requeues one letter: its task back to queued, its message on the queue, the other letter untouched', async () => {
  const { storage, routes, tasks, letters, ids } = await twoDeadLetters();
  const res = await requeue(routes, 'light', ids[0]);
  expect([res.status, res.json]).toEqual([
    200,
    { capability: 'light', queue: storage.names.queueOf('light'), requeued: 1, skipped: [] },
  ]);
  expect((await tasks.get(ids[0]))?.status).toBe('queued');
  expect((await tasks.get(ids[1]))?.status).toBe('failed');
  const back = (await storage.queue('light').receiveMessages({ numberOfMessages: 32 })).receivedMessageItems;
  expect(back.map((m) => JSON.parse(decodeMessageText(m.messageText)).task_id)).toEqual([ids[0]]);
  expect((await letters.list('light')).map((l) => l.id)).toEqual([ids[1]]);
  // the same id again: it is gone
  expectProblem(await requeue(routes, 'light', ids[0]), 404, 'not_found', /No dead letter .* for light/);
});

it('keeps a letter that cannot run and says why: 422 for a bad message, 409 when its task is not failed', async () => {
  const { routes, tasks, letters, ids } = await twoDeadLetters();
  await letters.record({
    capability: 'light',
    id: 'garbled-1',
    task_id: ids[0],
    reason: 'invalid_message',
    message: '{"task_id":"nope"}',
    dequeue_count: 1,
    error: 'bad',
  });
  expectProblem(
    await requeue(routes, 'light', 'garbled-1'),
    422,
    'dead_letter_not_replayable',
    /not a valid task message.*stays/,
  );
  await tasks.requeue(ids[1]); // someone else put the task back to work meanwhile
  expectProblem(
    await requeue(routes, 'light', ids[1]),
    409,
    'dead_letter_task_not_failed',
    /task already queued.*stays/,
  );
  expect((await letters.list('light')).map((l) => l.id).sort()).toEqual([...ids, 'garbled-1'].sort());
});

it('answers 400 for an unknown capability or an id that is no letter id, 404 for an unknown id', async () => {
  const { routes } = await twoDeadLetters();
  expectProblem(await requeue(routes, 'medium', 'x'), 400, 'validation_failed', /capability/);
  expectProblem(await requeue(routes, 'light', "a'b"), 400, 'validation_failed', /id/);
  expectProblem(await requeue(routes, 'light', 'no-such-letter'), 404, 'not_found', /No dead letter no-such-letter/);
});
