/**
 * The local host runs an invocation as the real host and Node worker do: invocation hooks around it, trigger
 * metadata as the worker delivers it, and host.json functionTimeout enforced with the host's message.
 */
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import {
  AccountSASPermissions,
  generateAccountSASQueryParameters,
  QueueServiceClient,
  StorageSharedKeyCredential,
} from '@azure/storage-queue';
import { enqueue, decodeMessageText } from '../../shared/storage/queue';
import { startLocalHost, timeSpanText, type RunningLocalHost } from '../../scripts/local-host/host';
import { startAzurite, type RunningAzurite } from '../../scripts/azurite';
import { uniqueNamespace } from '../helpers/storage';
import { HOST_MAIN, waitFor } from '../helpers/host';

const HOST_DIST = path.dirname(HOST_MAIN);

jest.mock('@azure/functions-core', () => jest.requireActual('../../scripts/local-host/functions-core').functionsCore, {
  virtual: true,
});

const queueName = `${uniqueNamespace()}-runtime`;
const BODY_LIMIT = 1000;
const fixture = path.join(__dirname, 'fixtures-runtime/functions.ts');
let azurite: RunningAzurite;
let host: RunningLocalHost;
const logs: string[] = [];
let events: string[];
let seen: { payload: unknown; metadata: unknown }[];
let uploads: number[];

beforeAll(async () => {
  azurite = await startAzurite();
  process.env.AzureWebJobsStorage = azurite.connectionString;
  process.env.RUNTIME_QUEUE = queueName;
  // read once at start-up, as HttpRequestBodySizeMiddleware.cs reads it
  // (azure-functions-host src/WebJobs.Script.WebHost/Middleware/)
  process.env.FUNCTIONS_REQUEST_BODY_SIZE_LIMIT = String(BODY_LIMIT);
  host = await startLocalHost({
    root: path.dirname(fixture),
    port: 0,
    files: [fixture],
    log: (line) => void logs.push(line),
    queueLeaseMs: 2000,
  });
  ({ events, seen, uploads } = jest.requireActual<{ events: string[]; seen: typeof seen; uploads: number[] }>(fixture));
}, 30000);

afterAll(async () => {
  delete process.env.FUNCTIONS_REQUEST_BODY_SIZE_LIMIT;
  await host?.stop(0);
  await azurite?.stop();
});

const queue = () => QueueServiceClient.fromConnectionString(azurite.connectionString).getQueueClient(queueName);

// InvocationHandler in azure-functions-nodejs-worker src/eventHandlers/InvocationHandler.ts: preInvocation hooks may
// replace inputs and handler, postInvocation hooks see the result or error, hookData spans both
it('runs preInvocation and postInvocation hooks around every invocation, with the inputs a hook set', async () => {
  await enqueue(queue(), { hello: 'hooks' });
  const call = await waitFor('the invocation', async () =>
    seen.find((s) => (s.payload as { hello?: string }).hello === 'hooks'),
  );
  expect(call.payload).toEqual({ hello: 'hooks', hooked: true });
  await waitFor('the postInvocation hook', async () => events.includes('post:work:true:ok') || undefined);
  expect(events.slice(0, 2)).toEqual(['pre:work', 'post:work:true:ok']);
  // GrpcMessageConversionExtensions.ToRpcDefault (azure-functions-host src/WebJobs.Script.Grpc/MessageExtensions/)
  // sends DateTimeOffset and long as JSON; fromRpcTriggerMetadata.ts in azure-functions-nodejs-library parses and
  // camel-cases them
  expect(call.metadata).toMatchObject({
    dequeueCount: 1,
    insertionTime: expect.stringMatching(/\+00:00$/),
    sys: { methodName: 'work', utcNow: expect.any(String), randGuid: expect.any(String) },
  });
});

// FunctionExecutor (azure-webjobs-sdk src/Microsoft.Azure.WebJobs.Host/Executors/FunctionExecutor.cs) fails the
// invocation with "Timeout value of <t> was exceeded by function: Functions.<name>";
// WebScriptHostExceptionHandler.OnTimeoutExceptionAsync (azure-functions-host src/WebJobs.Script.WebHost/) then
// restarts the worker. The message is then retried like any failure and poisoned after maxDequeueCount.
it('fails an invocation that overruns functionTimeout with the host message; the message is retried, then poisoned', async () => {
  expect(host.config.functionTimeoutMs).toBe(1000);
  await enqueue(queue(), { hang: true });
  const poison = QueueServiceClient.fromConnectionString(azurite.connectionString).getQueueClient(
    `${queueName}-poison`,
  );
  const message = await waitFor(
    'the poison message',
    async () => (await poison.receiveMessages()).receivedMessageItems[0],
    20000,
  );
  expect(JSON.parse(decodeMessageText(message.messageText))).toEqual({ hang: true });
  const timeout = 'Timeout value of 00:00:01 was exceeded by function: Functions.work';
  expect(events.filter((e) => e === `post:work:true:error: ${timeout}`)).toHaveLength(2);
  expect(
    seen
      .filter((s) => (s.payload as { hang?: boolean }).hang)
      .map((s) => (s.metadata as { dequeueCount: number }).dequeueCount),
  ).toEqual([1, 2]);
  expect(logs.some((l) => l.includes("Timeout value of 00:00:01 exceeded by function 'Functions.work'"))).toBe(true);
}, 30000);

it('writes time spans as .NET TimeSpan.ToString() does', () => {
  expect(timeSpanText(600_000)).toBe('00:10:00');
  expect(timeSpanText(1500)).toBe('00:00:01.5000000');
  expect(timeSpanText(90_061_000)).toBe('1.01:01:01');
});

// QueueListener.ExecuteAsync (azure-sdk-for-net sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Queues/src/
// Listeners/QueueListener.cs) rethrows a 403; WebScriptHostExceptionHandler.OnUnhandledExceptionAsync
// (azure-functions-host src/WebJobs.Script.WebHost/WebScriptHostExceptionHandler.cs) logs "Host is shutting down"
// and stops the application. Here a SAS that expires while the host polls stands for a key revoked under it.
it('reports a storage error it does not retry (403 while polling) so the host can shut down', async () => {
  const parts = Object.fromEntries(
    azurite.connectionString
      .split(';')
      .filter(Boolean)
      .map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]),
  );
  const sas = generateAccountSASQueryParameters(
    {
      expiresOn: new Date(Date.now() + 3000),
      permissions: AccountSASPermissions.parse('rwdlacup'),
      services: 'q',
      resourceTypes: 'sco',
    },
    new StorageSharedKeyCredential(parts.AccountName, parts.AccountKey),
  ).toString();
  const fatal: Error[] = [];
  const previous = process.env.AzureWebJobsStorage;
  process.env.AzureWebJobsStorage = `QueueEndpoint=${parts.QueueEndpoint};SharedAccessSignature=${sas}`;
  let expiring: RunningLocalHost | undefined;
  try {
    expiring = await startLocalHost({
      root: path.dirname(fixture),
      port: 0,
      files: [fixture],
      log: () => undefined,
      queueLeaseMs: 2000,
      onFatal: (error) => void fatal.push(error),
    });
  } finally {
    process.env.AzureWebJobsStorage = previous;
  }
  try {
    const error = await waitFor('the fatal storage error', async () => fatal[0], 15000, 100);
    expect(error.message).toContain(`queue ${queueName}`);
    expect(error.message).toMatch(/ 403 /);
  } finally {
    await expiring.stop(0);
  }
}, 30000);

// RpcFunctionInvocationDispatcher.WorkerError (azure-functions-host
// src/WebJobs.Script/Workers/Rpc/FunctionRegistration/RpcFunctionInvocationDispatcher.cs): a worker that dies of a
// stray error is restarted and the host stays up
it('keeps the host process alive after a stray exception or unhandled rejection, and logs both', () => {
  const script = `
    const { keepRunningOnStrayErrors } = require(${JSON.stringify(path.join(HOST_DIST, 'host.js'))});
    keepRunningOnStrayErrors((line) => console.log(line));
    setTimeout(() => { throw new Error('thrown from a callback'); }, 10);
    Promise.reject(new Error('never caught'));
    setTimeout(() => console.log('still serving'), 200);
  `;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
  expect(run.stdout).toContain('Worker uncaught exception (the host keeps running): Error: thrown from a callback');
  expect(run.stdout).toContain('Worker unhandled rejection (the host keeps running): Error: never caught');
  expect(run.stdout).toContain('still serving');
  expect(run.status).toBe(0);
});

// The same hooks and functionTimeout apply to HTTP invocations: the host runs every invocation through the
// worker's InvocationHandler, and FunctionExecutor bounds each one; a failed HTTP invocation answers 500.
it('runs hooks around HTTP invocations and fails one that overruns functionTimeout', async () => {
  const quick = await fetch(`${host.url}/slow`);
  expect([quick.status, await quick.text()]).toEqual([200, 'done']);
  await waitFor('the HTTP postInvocation hook', async () => events.includes('post:slow:true:ok') || undefined);
  const overrun = await fetch(`${host.url}/slow?ms=2500`);
  expect(overrun.status).toBe(500);
  await waitFor('the timeout hook', async () =>
    events.find((e) => e.startsWith('post:slow:true:error: Timeout value of')),
  );
});

/** Writes raw request bytes and returns everything the host sent until it closed the connection (or 5 s). */
function rawExchange(parts: readonly (string | Buffer)[]): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(Number(new URL(host.url).port), '127.0.0.1');
    let received = '';
    const done = () => resolve(received);
    const timer = setTimeout(() => socket.destroy(), 5000);
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      done();
    });
    socket.on('connect', () => {
      for (const part of parts) socket.write(part);
    });
  });
}

// The host sets Kestrel's MaxRequestBodySize from FUNCTIONS_REQUEST_BODY_SIZE_LIMIT (HttpRequestBodySizeMiddleware.cs);
// Kestrel refuses a declared length over it on the first read (Http1ContentLengthMessageBody.OnReadStarting) and
// stops a chunked body once the count passes it (Http1MessageBody.OnObservedBytesExceedMaxRequestBodySize), keep-alive
// off. That exception surfaces while the host binds `req`, so ExceptionMiddleware.cs answers an empty 500
// (Azure/azure-functions-host#10519) and the function never runs.
it('refuses a body over FUNCTIONS_REQUEST_BODY_SIZE_LIMIT before the function runs, as the Functions host does', async () => {
  const chunk = (data: Buffer) => [Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')];
  const head = (extra: string) =>
    `POST ${new URL(host.url).pathname}/upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n${extra}\r\n`;
  const chunked = await rawExchange([
    head('Transfer-Encoding: chunked\r\n'),
    ...chunk(Buffer.alloc(600, 1)),
    ...chunk(Buffer.alloc(600, 2)),
    ...chunk(Buffer.alloc(600, 3)),
    '0\r\n\r\n',
  ]);
  const declared = await rawExchange([head(`Content-Length: ${BODY_LIMIT + 1}\r\n`)]);
  for (const answer of [chunked, declared]) {
    expect(answer).toMatch(/^HTTP\/1\.1 500 /);
    expect(answer).toMatch(/\r\ncontent-length: 0\r\n/i);
    expect(answer).toMatch(/\r\nconnection: close\r\n/i);
    expect(answer.endsWith('\r\n\r\n')).toBe(true);
  }
  expect(uploads).toEqual([]);
  const fits = await fetch(`${host.url}/upload`, { method: 'POST', body: Buffer.alloc(BODY_LIMIT, 7) });
  expect([fits.status, await fits.text()]).toEqual([200, 'stored']);
  expect(uploads).toEqual([BODY_LIMIT]);
});

// Routes as the Functions host maps them: each an ASP.NET Core Route with inline constraints (dotnet/aspnetcore
// src/Http/Routing/src/Constraints/*.cs) and an HttpMethodRouteConstraint (azure-functions-host
// src/WebJobs.Script.WebHost/WebScriptHostHttpRoutesManager.cs), tried in function-name order
// (src/WebJobs.Script/Host/FunctionMetadataManager.cs) in one RouteCollection, first match wins
// (azure-webjobs-sdk-extensions src/WebJobs.Extensions.Http/Routing/WebJobsRouteBuilder.cs); no match is an empty 404.
it('matches routes with inline constraints, optional, default and catch-all parameters, in function-name order', async () => {
  const call = async (route: string, method = 'GET') => {
    const res = await fetch(`${host.url}/${route}`, { method });
    const text = await res.text();
    return res.status === 200 ? (JSON.parse(text) as unknown) : { status: res.status, body: text };
  };
  const hit = (fn: string, params: Record<string, string> = {}) => ({ fn, params });
  const miss = { status: 404, body: '' };
  expect(await call('items/5')).toEqual(hit('routeA_item', { id: '5' }));
  expect(await call('items/0')).toEqual(hit('routeC_itemAny', { any: '0' })); // int, but not min(1)
  expect(await call('items/ab')).toEqual(hit('routeB_itemName', { name: 'ab' }));
  expect(await call('items/AB')).toEqual(hit('routeB_itemName', { name: 'AB' })); // alpha ignores case
  expect(await call('items/a')).toEqual(hit('routeC_itemAny', { any: 'a' })); // alpha, but not minlength(2)
  // the literal route of a function named later never sees what an earlier function's parameter takes
  expect(await call('items/special')).toEqual(hit('routeB_itemName', { name: 'special' }));
  expect(await call('things/6F9619FF-8B86-D011-B42D-00CF4FC964FF')).toEqual(
    hit('routeD_guid', { id: '6F9619FF-8B86-D011-B42D-00CF4FC964FF' }),
  );
  expect(await call('things/not-a-guid')).toEqual(miss);
  expect(await call('pages')).toEqual(hit('routeE_optional'));
  expect(await call('pages/3')).toEqual(hit('routeE_optional', { page: '3' }));
  expect(await call('pages/three')).toEqual(miss);
  expect(await call('sizes')).toEqual(hit('routeF_default', { size: 'medium' }));
  expect(await call('sizes/large')).toEqual(hit('routeF_default', { size: 'large' }));
  expect(await call('files/a/b/c.txt')).toEqual(hit('routeG_catchAll', { path: 'a/b/c.txt' }));
  expect(await call('files')).toEqual(hit('routeG_catchAll'));
  expect(await call('codes/ab123')).toEqual(hit('routeH_regex', { code: 'ab123' }));
  expect(await call('codes/AB123')).toEqual(hit('routeH_regex', { code: 'AB123' })); // regex ignores case
  expect(await call('codes/abc12')).toEqual(miss);
  expect(await call('scores/5', 'POST')).toEqual(hit('routeI_range', { n: '5' }));
  expect(await call('scores/5')).toEqual(miss); // GET: the method constraint does not match
  expect(await call('scores/11', 'POST')).toEqual(miss);
});
