/**
 * GET /api/tasks/{task_id} (anonymous): the task record (queued tasks say how many messages
 * are ahead). GET /api/tasks/{task_id}/result (anonymous): the processed image, 409 until done.
 */
import { app } from '@azure/functions';
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
