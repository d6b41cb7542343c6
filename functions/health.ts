/**
 * GET /api/health (anonymous): 200 {status, checks: {blob, queue, table}, version}, or 503 when
 * storage does not answer. GET /api/filters (anonymous): the filter catalog and capability table.
 */
import { app } from '@azure/functions';
import { healthRoutes } from '../shared/http/health';
import { httpStorage } from '../shared/storage/clients';

const routes = healthRoutes(httpStorage);

app.http('health', { route: 'health', methods: ['GET'], authLevel: 'anonymous', handler: routes.health });
app.http('filters', { route: 'filters', methods: ['GET'], authLevel: 'anonymous', handler: routes.filters });
