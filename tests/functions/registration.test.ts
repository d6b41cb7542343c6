/**
 * The complete registration table, as the local host loads it: package.json `main` → the built
 * function files → the real @azure/functions library → the host's @azure/functions-core
 * stand-in. (Under jest, the stand-in is provided with jest.mock, since jest resolves modules
 * itself; the host process installs it into Node's loader.)
 */
import path from 'node:path';
import { CAPABILITIES, poisonFunctionName, workerFunctionName } from '../../shared/capabilities';
import { functionFiles, loadFunctions } from '../../scripts/local-host/loader';
import type { RegisteredFunction } from '../../scripts/local-host/functions-core';

jest.mock('@azure/functions-core', () => jest.requireActual('../../scripts/local-host/functions-core').functionsCore, {
  virtual: true,
});

const ROOT = path.resolve(__dirname, '../..');
let functions: readonly RegisteredFunction[];

beforeAll(() => {
  functions = loadFunctions(functionFiles(ROOT));
});

describe('function registrations', () => {
  it('loads the function files package.json main names', () => {
    expect(functionFiles(ROOT).map((f) => path.relative(ROOT, f))).toEqual(
      [
        'admin',
        'callbacks',
        'dashboard',
        'deadLetters',
        'health',
        'images',
        'jobs',
        'metrics',
        'openapi',
        'retention',
        'tasks',
        'workers',
      ].map((n) => `dist/functions/${n}.js`),
    );
  });

  it('registers every HTTP route with its methods and auth level', () => {
    // The one table of who may call what (issue 14). anonymous: the health probe, the filter
    // catalog (the same for every deployment, no user data) and the dashboard's static shell (no
    // data in it; it must load for the user to type the key). function: everything that reads or
    // writes images, jobs, tasks, results, dead letters, workers or metrics. admin (the master key):
    // what changes or destroys other people's work (requeue, purge, deletes).
    const http = functions
      .filter((f) => f.trigger.type === 'httpTrigger')
      .map((f) => [f.name, f.trigger.route, f.trigger.methods?.join(','), f.trigger.authLevel])
      .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    expect(http).toEqual([
      ['dashboard', 'dashboard', 'GET', 'anonymous'],
      ['dashboardAssets', 'dashboard/assets/{file}', 'GET', 'anonymous'],
      ['deadLetters', 'dead-letters', 'GET', 'function'],
      ['deleteImage', 'images/{name}', 'DELETE', 'admin'],
      ['deleteJob', 'jobs/{job_id}', 'DELETE', 'admin'],
      ['filters', 'filters', 'GET', 'anonymous'],
      ['getImage', 'images/{name}', 'GET', 'function'],
      ['getImageInfo', 'images/{name}/info', 'GET', 'function'],
      ['getJob', 'jobs/{job_id}', 'GET', 'function'],
      ['getTask', 'tasks/{task_id}', 'GET', 'function'],
      ['getTaskResult', 'tasks/{task_id}/result', 'GET', 'function'],
      ['health', 'health', 'GET', 'anonymous'],
      ['listImages', 'images', 'GET', 'function'],
      ['listJobs', 'jobs', 'GET', 'function'],
      ['metrics', 'metrics', 'GET', 'function'],
      ['metricsHistory', 'metrics/history', 'GET', 'function'],
      ['openapi', 'openapi.json', 'GET', 'anonymous'], // the OpenAPI document: public like the catalog
      ['purgeTasks', 'tasks', 'DELETE', 'admin'],
      ['putImage', 'images/{name}', 'PUT', 'function'],
      ['requeueDeadLetter', 'dead-letters/{capability}/{id}/requeue', 'POST', 'admin'],
      ['requeueDeadLetters', 'dead-letters/{capability}/requeue', 'POST', 'admin'],
      ['retryJob', 'jobs/{job_id}/retry', 'POST', 'function'],
      ['submitJob', 'jobs', 'POST', 'function'],
      ['workers', 'workers', 'GET', 'function'],
    ]);
  });

  it('claims no route the Functions host reserves for itself', () => {
    // Mirrors ScriptHost.ValidateHttpFunction in Azure/azure-functions-host
    // (src/WebJobs.Script/Host/ScriptHost.cs): a route starting with "admin" or "runtime" fails
    // with "The specified route conflicts with one or more built in routes", so the function never
    // loads in Azure, though the local host would serve it.
    const reserved = functions
      .filter((f) => f.trigger.type === 'httpTrigger')
      .map((f) => String(f.trigger.route ?? f.name))
      .filter((route) => /^(admin|runtime)/.test(route.replace(/^\/+/, '').toLowerCase()));
    expect(reserved).toEqual([]);
  });

  it('registers one worker and one poison function per capability, from the capability table, and the callbacks', () => {
    const queues = functions
      .filter((f) => f.trigger.type === 'queueTrigger')
      .map((f) => [f.name, f.trigger.queueName, f.trigger.connection]);
    expect(queues.sort()).toEqual(
      [
        ...CAPABILITIES.flatMap((c) => [
          [poisonFunctionName(c.name), `${c.queue}-poison`, 'AzureWebJobsStorage'],
          [workerFunctionName(c.name), c.queue, 'AzureWebJobsStorage'],
        ]),
        ['deliverCallback', 'callbacks', 'AzureWebJobsStorage'],
        ['callbackPoison', 'callbacks-poison', 'AzureWebJobsStorage'],
      ].sort(),
    );
  });

  it('registers the metrics and retention timers on their schedules, nothing else, and nothing twice', () => {
    expect(functions.filter((f) => f.trigger.type === 'timerTrigger').map((f) => [f.name, f.trigger.schedule])).toEqual(
      [
        ['collectMetrics', '*/10 * * * * *'],
        ['applyRetention', '0 30 3 * * *'],
      ],
    );
    expect(functions.filter((f) => !['httpTrigger', 'queueTrigger', 'timerTrigger'].includes(f.trigger.type))).toEqual(
      [],
    );
    expect(new Set(functions.map((f) => f.name)).size).toBe(functions.length);
  });
});
