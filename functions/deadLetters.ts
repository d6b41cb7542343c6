/**
 * GET /api/dead-letters (function key): dead letters and poison-queue backlog per capability.
 * POST /api/dead-letters/{capability}/requeue (admin: the master key): failed tasks back to queued
 * and their messages back on the capability queue. It changes what every worker runs next, so it
 * takes the operator's key, not the key handed to clients that submit jobs.
 * POST /api/dead-letters/{capability}/{id}/requeue (admin): the same for one dead letter; 404 when there is
 * no such letter, 409/422 (and the letter stays) when it cannot run again.
 */
import { app } from '../shared/http/app';
import { deadLetterRoutes } from '../shared/http/dead-letters';
import { httpStorage } from '../shared/storage/clients';

const routes = deadLetterRoutes(httpStorage);

app.http('deadLetters', {
  route: 'dead-letters',
  methods: ['GET'],
  authLevel: 'function',
  handler: routes.deadLetters,
});
app.http('requeueDeadLetters', {
  route: 'dead-letters/{capability}/requeue',
  methods: ['POST'],
  authLevel: 'admin',
  handler: routes.requeue,
});
app.http('requeueDeadLetter', {
  route: 'dead-letters/{capability}/{id}/requeue',
  methods: ['POST'],
  authLevel: 'admin',
  handler: routes.requeueOne,
});
