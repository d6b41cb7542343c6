/**
 * The local host runs an invocation as the real host and Node worker do: invocation hooks around it, trigger
 * metadata as the worker delivers it, and host.json functionTimeout enforced with the host's message.
 */
import { spawnSync } from 'node:child_process';
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
const fixture = path.join(__dirname, 'fixtures-runtime/functions.ts');
let azurite: RunningAzurite;
let host: RunningLocalHost;
const logs: string[] = [];
let events: string[];
let seen: { payload: unknown; metadata: unknown }[];

beforeAll(async () => {
  azurite = await startAzurite();
  process.env.AzureWebJobsStorage = azurite.connectionString;
  process.env.RUNTIME_QUEUE = queueName;
  host = await startLocalHost({
    root: path.dirname(fixture),
    port: 0,
    files: [fixture],
    log: (line) => void logs.push(line),
    queueLeaseMs: 2000,
  });
  ({ events, seen } = jest.requireActual<{ events: string[]; seen: typeof seen }>(fixture));
}, 30000);

afterAll(async () => {
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
