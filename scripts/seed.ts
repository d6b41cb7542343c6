/**
 * Puts the generated sample set into the `images` container when it is empty, so a first job has something to
 * process. Each carries SAMPLE_METADATA, so retention never removes it.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Storage } from '../shared/storage/clients';
import { contentTypeOf, sniffFormat } from '../shared/imaging/input';
import { SAMPLE_METADATA } from '../shared/storage/images';
import { SAMPLES_DIR } from './paths';
import { generateSamples } from './samples';

export async function seedSampleImages(storage: Storage, dir = SAMPLES_DIR): Promise<string[]> {
  await storage.ensureResources();
  for await (const _ of storage.images.listBlobsFlat()) return [];
  const files = await generateSamples(dir);
  for (const file of files) {
    const data = await readFile(file);
    await storage.images.getBlockBlobClient(path.basename(file)).uploadData(data, {
      blobHTTPHeaders: { blobContentType: contentTypeOf(sniffFormat(data)) },
      // marked, so retention keeps them (RETENTION_UPLOADS_DAYS applies to uploads only)
      metadata: { ...SAMPLE_METADATA },
    });
  }
  return files.map((f) => path.basename(f));
}
