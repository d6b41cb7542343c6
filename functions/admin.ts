/**
 * DELETE /api/tasks (admin: the master key): deletes every queued message (main and poison
 * queues), task record, dead letter and processed result of this app's storage, and answers the
 * count of each. Images, the worker registry and metrics are kept. The route is not under
 * `admin/`: the Functions host reserves that prefix for its own API and refuses such a route.
 */
import { app } from '../shared/http/app';
import { purgeRoutes } from '../shared/http/purge';
import { httpStorage } from '../shared/storage/clients';

const routes = purgeRoutes(httpStorage);

app.http('purgeTasks', { route: 'tasks', methods: ['DELETE'], authLevel: 'admin', handler: routes.purgeTasks });
