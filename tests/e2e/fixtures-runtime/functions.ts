/** Fixture functions for the runtime-fidelity test: invocation hooks and a function that overruns functionTimeout. */
import { app, type InvocationContext } from '@azure/functions';

export const events: string[] = [];
export const seen: { payload: unknown; metadata: unknown }[] = [];

app.hook.preInvocation((context) => {
  events.push(`pre:${context.invocationContext.functionName}`);
  context.hookData.started = true;
  // a preInvocation hook may replace the inputs the function receives (here: the queue payload only)
  if (context.invocationContext.functionName !== 'work') return;
  const [payload] = context.inputs as [Record<string, unknown>];
  context.inputs = [{ ...payload, hooked: true }];
});

app.hook.postInvocation((context) => {
  const outcome = context.error instanceof Error ? `error: ${context.error.message}` : 'ok';
  events.push(`post:${context.invocationContext.functionName}:${String(context.hookData.started)}:${outcome}`);
});

app.storageQueue('work', {
  queueName: process.env.RUNTIME_QUEUE ?? 'runtime-queue',
  connection: 'AzureWebJobsStorage',
  handler: async (payload: unknown, context: InvocationContext) => {
    seen.push({ payload, metadata: context.triggerMetadata });
    if ((payload as { hang?: boolean }).hang) await new Promise((resolve) => setTimeout(resolve, 3000).unref());
  },
});

app.http('slow', {
  route: 'slow',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: async (request) => {
    const ms = Number(request.query.get('ms') ?? 0);
    if (ms) await new Promise((resolve) => setTimeout(resolve, ms).unref());
    return { status: 200, body: 'done' };
  },
});

/** Bodies the `upload` function received (its length each): one over the host's limit must never arrive. */
export const uploads: number[] = [];

app.http('upload', {
  route: 'upload',
  methods: ['POST'],
  authLevel: 'anonymous',
  handler: async (request) => {
    uploads.push((await request.arrayBuffer()).byteLength);
    return { status: 200, body: 'stored' };
  },
});

/** Answers with the function's name and its route values, so a test sees which route matched. */
const echoRoute = (name: string, route: string, methods: ('GET' | 'POST')[] = ['GET']) =>
  app.http(name, {
    route,
    methods,
    authLevel: 'anonymous',
    handler: async (request) => ({ status: 200, jsonBody: { fn: name, params: request.params } }),
  });

// Names chosen so the function-name order (FunctionMetadataManager sorts by name) is the order listed here.
echoRoute('routeA_item', 'items/{id:int:min(1)}');
echoRoute('routeB_itemName', 'items/{name:alpha:minlength(2)}');
echoRoute('routeC_itemAny', 'items/{any}');
echoRoute('routeD_guid', 'things/{id:guid}');
echoRoute('routeE_optional', 'pages/{page:int?}');
echoRoute('routeF_default', 'sizes/{size=medium}');
echoRoute('routeG_catchAll', 'files/{*path}');
echoRoute('routeH_regex', 'codes/{code:regex(^[a-z]{{2}}\\d{{3}}$)}');
echoRoute('routeI_range', 'scores/{n:range(1,10)}', ['POST']);
echoRoute('routeZ_literal', 'items/special');
