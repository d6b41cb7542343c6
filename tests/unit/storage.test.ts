import { resolveConnectionString } from '../../shared/storage/connection';
import { decodeMessageText, enqueue } from '../../shared/storage/queue';
import { useAzurite } from '../helpers/storage';
import { resourceNames } from '../../shared/storage/names';

const env = useAzurite();

describe('storage', () => {
  it('creates every container, queue and table idempotently', async () => {
    const storage = await env.storage();
    await storage.ensureResources();
    expect(await storage.images.exists()).toBe(true);
    expect(await storage.processed.exists()).toBe(true);
    expect(await storage.queue('heavy').exists()).toBe(true);
    expect(await storage.poisonQueue('light').exists()).toBe(true);
    await storage.tasks.createEntity({ partitionKey: 'p', rowKey: 'r' });
  });

  it('enqueues base64 text, as the Functions queue trigger expects', async () => {
    const storage = await env.storage();
    await enqueue(storage.queue('light'), { hello: 'wörld' });
    const [message] = (await storage.queue('light').receiveMessages()).receivedMessageItems;
    expect(message.messageText).toBe(Buffer.from('{"hello":"wörld"}').toString('base64'));
    expect(JSON.parse(decodeMessageText(message.messageText))).toEqual({ hello: 'wörld' });
  });

  it('reads UseDevelopmentStorage=true as Azurite on its default ports, anything else as given', () => {
    expect(resolveConnectionString('UseDevelopmentStorage=true')).toContain(
      'BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1',
    );
    expect(resolveConnectionString('AccountName=x;AccountKey=y')).toBe('AccountName=x;AccountKey=y');
    expect(() => resolveConnectionString(undefined)).toThrow(/AzureWebJobsStorage is not set/);
  });

  it('puts names under a namespace and refuses unsafe namespaces', () => {
    const names = resourceNames('abc1');
    expect([names.images, names.tasksTable, names.queueOf('heavy'), names.poisonQueueOf('heavy')]).toEqual([
      'abc1-images',
      'abc1tasks',
      'abc1-tasks-heavy',
      'abc1-tasks-heavy-poison',
    ]);
    expect(resourceNames('').queueOf('light')).toBe('tasks-light');
    expect(() => resourceNames('Bad-Name')).toThrow(/STORAGE_NAMESPACE/);
  });
});
