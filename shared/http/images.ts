/** Routes for the `images` container: list, upload, download and metadata. */
import { randomUUID } from 'node:crypto';
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import sharp from 'sharp';
import { AppError, ValidationError } from '../errors';
import { assertComplete, contentTypeOf, sniffFormat } from '../imaging/input';
import { configureSharp } from '../imaging/sharp-settings';
import { currentLimits } from '../imaging/limits';
import { readHeader } from '../imaging/header';
import { toPermanentIfInputError } from '../imaging/sharp-errors';
import type { Storage } from '../storage/clients';
import { downloadImage } from '../storage/images';
import { IMAGE_NAME } from '../tasks/message';
import { problem as fieldProblem } from '../validation';
import { mediaType, readBody } from './body';
import { handled, json } from './respond';

configureSharp();

export function validImageName(name: unknown, field = 'name'): string {
  if (typeof name !== 'string' || !IMAGE_NAME.test(name)) {
    throw new ValidationError([
      fieldProblem(
        field,
        'an image name of 1-200 letters, digits, dots, dashes or underscores, not starting with a dot and without ".."',
        name,
      ),
    ]);
  }
  return name;
}

/** Checks the bytes are a whole, accepted image and stores them under `name` (or a fresh name). */
export async function storeImage(
  storage: Storage,
  data: Buffer,
  name?: string,
): Promise<{ name: string; content_type: string; bytes: number }> {
  const format = sniffFormat(data);
  assertComplete(format, data);
  await readHeader(data, currentLimits());
  const stored = name ?? `upload-${randomUUID()}.${format === 'jpeg' ? 'jpg' : format}`;
  await storage.ensureResources();
  await storage.images
    .getBlockBlobClient(stored)
    .uploadData(data, { blobHTTPHeaders: { blobContentType: contentTypeOf(format) } });
  return { name: stored, content_type: contentTypeOf(format), bytes: data.length };
}

export async function imageExists(storage: Storage, name: string): Promise<boolean> {
  return storage.images.getBlockBlobClient(name).exists();
}

export function imageRoutes(getStorage: () => Storage) {
  return {
    listImages: handled(async () => {
      const storage = getStorage();
      await storage.ensureResources();
      const images = [];
      for await (const blob of storage.images.listBlobsFlat()) {
        images.push({
          name: blob.name,
          bytes: blob.properties.contentLength ?? 0,
          content_type: blob.properties.contentType ?? null,
          last_modified: blob.properties.lastModified?.toISOString() ?? null,
        });
      }
      return json(200, { container: storage.names.images, count: images.length, images });
    }),

    putImage: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const name = validImageName(request.params.name);
      const type = mediaType(request);
      if (type && !type.startsWith('image/') && type !== 'application/octet-stream') {
        throw new AppError(
          'unsupported_media_type',
          `Expected the image bytes with Content-Type image/* but received ${type}`,
        );
      }
      const stored = await storeImage(getStorage(), await readBody(request), name);
      return json(201, stored, { location: `${new URL(request.url).origin}/api/images/${encodeURIComponent(name)}` });
    }),

    getImage: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const { data, contentType } = await downloadImage(getStorage(), validImageName(request.params.name));
      return {
        status: 200,
        body: data,
        headers: { 'content-type': contentType, 'content-length': String(data.length) },
      };
    }),

    getImageInfo: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const name = validImageName(request.params.name);
      const { data } = await downloadImage(getStorage(), name);
      const format = sniffFormat(data);
      const meta = await sharp(data, { limitInputPixels: false })
        .metadata()
        .catch((err: unknown) => {
          throw toPermanentIfInputError(err);
        });
      return json(200, {
        name,
        format,
        width: meta.autoOrient.width,
        height: meta.autoOrient.height,
        bytes: data.length,
        channels: meta.channels ?? null,
        space: meta.space ?? null,
        has_alpha: meta.hasAlpha ?? false,
        orientation: meta.orientation ?? 1,
      });
    }),
  };
}
