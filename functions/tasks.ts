/**
 * GET /api/tasks/{task_id} (function key): the task record (queued tasks say how many messages
 * are ahead). GET /api/tasks/{task_id}/result (function key): 302 to a short-lived read-only link to
 * the result (RESULT_LINK_TTL_SECONDS), ?download=stream for the bytes; 409 until done.
 */
import { app } from '../shared/http/app';
import { taskRoutes } from '../shared/http/tasks';
import { httpStorage } from '../shared/storage/clients';

const routes = taskRoutes(httpStorage);

app.http('getTask', { route: 'tasks/{task_id}', methods: ['GET'], authLevel: 'function', handler: routes.getTask });
app.http('getTaskResult', {
  route: 'tasks/{task_id}/result',
  methods: ['GET'],
  authLevel: 'function',
  handler: routes.getTaskResult,
});
