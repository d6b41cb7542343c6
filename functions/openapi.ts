/**
 * GET /api/openapi.json (anonymous): the OpenAPI 3.1 document of this API, generated from the HTTP
 * functions registered through shared/http/app.ts. Public like /api/filters: it describes the code,
 * the same for every deployment, carries no data, and a client needs it before it has a key.
 */
import { app } from '../shared/http/app';
import { OPENAPI_ROUTE, openApiRoutes } from '../shared/http/openapi';

const routes = openApiRoutes();

app.http('openapi', { route: OPENAPI_ROUTE, methods: ['GET'], authLevel: 'anonymous', handler: routes.openapi });
