/**
 * GET /api/health (anonymous): 200 {status, checks: {blob, queue, table}, version}, or 503 when
 * storage does not answer (probes and load balancers call it without a key). GET /api/filters
 * (anonymous): the filter catalog and capability table. It is public on purpose: it is the same for
 * every deployment of this code, carries no user data, and a client
 * needs it before it has a key (the CLI checks a pipeline against it before anything is sent).
 */
import { app } from '../shared/http/app';
import { healthRoutes } from '../shared/http/health';
import { httpStorage } from '../shared/storage/clients';

const routes = healthRoutes(httpStorage);

app.http('health', { route: 'health', methods: ['GET'], authLevel: 'anonymous', handler: routes.health });
app.http('filters', { route: 'filters', methods: ['GET'], authLevel: 'anonymous', handler: routes.filters });
