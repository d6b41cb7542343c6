/**
 * GET /api/dashboard (anonymous): the live dashboard page; it polls /api/metrics,
 * /api/metrics/history, /api/workers and /api/dead-letters from the browser, sending the function
 * key the user typed into its key form as x-functions-key.
 * GET /api/dashboard/assets/{file} (anonymous): its script, stylesheet and Chart.js from an
 * allow-list; any other name is a 404 problem.
 * Both are anonymous on purpose: they are static files with no data in them (no task, metric or
 * name is rendered into the HTML), and the page has to load before the user can type the key.
 */
import { app } from '../shared/http/app';
import { dashboardRoutes } from '../shared/http/dashboard';

const routes = dashboardRoutes();

app.http('dashboard', { route: 'dashboard', methods: ['GET'], authLevel: 'anonymous', handler: routes.dashboard });
app.http('dashboardAssets', {
  route: 'dashboard/assets/{file}',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: routes.dashboardAssets,
});
