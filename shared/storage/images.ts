/** Reading an input image from the `images` container, with a permanent error when it is absent. */
import { PermanentError } from '../errors';
import type { Storage } from './clients';

export async function downloadImage(storage: Storage, name: string): Promise<{ data: Buffer; contentType: string }> {
  const blob = storage.images.getBlockBlobClient(name);
  try {
    const response = await blob.download();
    const data = await streamToBuffer(response.readableStreamBody);
    return { data, contentType: response.contentType ?? 'application/octet-stream' };
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) {
      throw new PermanentError('image_not_found', `No image named '${name}' in the ${storage.names.images} container`);
    }
    throw err;
  }
}

async function streamToBuffer(stream: NodeJS.ReadableStream | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream ?? []) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}
