/** A real Azurite for a test file, and a Storage with names no other test uses. */
import { randomBytes } from 'node:crypto';
import { Storage } from '../../shared/storage/clients';
import { startAzurite, type RunningAzurite } from '../../scripts/azurite';
import { resourceNames } from '../../shared/storage/names';

export function uniqueNamespace(): string {
  return `t${randomBytes(5).toString('hex')}`;
}

/** Starts Azurite before the file's tests and stops it after them, even when they fail. */
export function useAzurite(): { azurite: () => RunningAzurite; storage: () => Promise<Storage> } {
  let running: RunningAzurite | undefined;
  beforeAll(async () => {
    running = await startAzurite();
  }, 30000);
  afterAll(async () => {
    await running?.stop();
  });
  return {
    azurite: () => running!,
    storage: async () => {
      const storage = new Storage(running!.connectionString, resourceNames(uniqueNamespace()));
      await storage.ensureResources();
      return storage;
    },
  };
}

/** The same storage, except that every output upload fails as a busy storage account answers (503). */
export function withFailingUploads(storage: Storage): Storage {
  const broken = Object.create(storage) as Storage;
  const busy = Object.assign(new Error('Server Busy: the storage account is over its request rate'), {
    statusCode: 503,
  });
  const processed = Object.create(storage.processed) as Storage['processed'];
  processed.getBlockBlobClient = (() => ({
    uploadData: () => Promise.reject(busy),
  })) as unknown as Storage['processed']['getBlockBlobClient'];
  Object.defineProperty(broken, 'processed', { value: processed });
  return broken;
}
