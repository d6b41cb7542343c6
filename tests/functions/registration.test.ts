/**
 * The function files register through the real @azure/functions library; a stand-in for the
 * worker's @azure/functions-core module records the metadata the host would receive.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { CAPABILITIES } from '../../shared/tasks/capabilities';
import { functionSuffix } from '../../shared/tasks/routing';

interface Binding {
  type: string;
  direction: string;
  route?: string;
  methods?: string[];
  authLevel?: string;
  queueName?: string;
  connection?: string;
}
const registered: { name: string; bindings: Record<string, Binding> }[] = [];

jest.mock(
  '@azure/functions-core',
  () => ({
    setProgrammingModel: () => undefined,
    getProgrammingModel: () => undefined,
    registerHook: () => ({ dispose: () => undefined }),
    registerFunction: (metadata: { name: string; bindings: Record<string, Binding> }) => {
      registered.push(metadata);
      return { dispose: () => undefined };
    },
  }),
  { virtual: true },
);

beforeAll(() => {
  const dir = path.join(__dirname, '../../functions');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) require(path.join(dir, file));
});

const trigger = (name: string) => Object.values(registered.find((f) => f.name === name)!.bindings).find((b) => b.direction === 'in')!;

describe('function registrations', () => {
  it('registers every HTTP route with its methods and auth level', () => {
    const http = registered
      .filter((f) => Object.values(f.bindings).some((b) => b.type === 'httpTrigger'))
      .map((f) => {
        const t = trigger(f.name);
        return [f.name, t.route, t.methods?.join(','), t.authLevel];
      })
      .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    expect(http).toEqual([
      ['deadLetters', 'dead-letters', 'GET', 'function'],
      ['filters', 'filters', 'GET', 'anonymous'],
      ['getImage', 'images/{name}', 'GET', 'anonymous'],
      ['getImageInfo', 'images/{name}/info', 'GET', 'anonymous'],
      ['getJob', 'jobs/{job_id}', 'GET', 'anonymous'],
      ['getTask', 'tasks/{task_id}', 'GET', 'anonymous'],
      ['getTaskResult', 'tasks/{task_id}/result', 'GET', 'anonymous'],
      ['health', 'health', 'GET', 'anonymous'],
      ['listImages', 'images', 'GET', 'anonymous'],
      ['putImage', 'images/{name}', 'PUT', 'function'],
      ['requeueDeadLetters', 'dead-letters/{capability}/requeue', 'POST', 'function'],
      ['submitJob', 'jobs', 'POST', 'function'],
    ]);
  });

  it('registers one worker and one poison function per capability, from the capability table', () => {
    for (const c of CAPABILITIES) {
      expect(trigger(`process${functionSuffix(c.name)}`)).toMatchObject({ type: 'queueTrigger', queueName: c.queue, connection: 'AzureWebJobsStorage' });
      expect(trigger(`poison${functionSuffix(c.name)}`)).toMatchObject({ type: 'queueTrigger', queueName: `${c.queue}-poison`, connection: 'AzureWebJobsStorage' });
    }
    expect(registered.filter((f) => trigger(f.name).type === 'queueTrigger')).toHaveLength(2 * CAPABILITIES.length);
  });
});
