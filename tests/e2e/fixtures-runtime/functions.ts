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
