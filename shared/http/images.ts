/** Routes for the `images` container: list, upload, download and metadata. */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { appSettings, type Settings } from '../config';
import { AppError } from '../errors';
import { describeImage } from '../imaging/header';
import type { Storage } from '../storage/clients';
import { listImages, readImage, storeUpload, validImageName } from '../storage/images';
import { mediaType, readBody } from './body';
import { handled, json } from './respond';

export function imageRoutes(getStorage: () => Storage, settings: Settings = appSettings()) {
  return {
    listImages: handled(async () => {
      const storage = getStorage();
      await storage.ensureResources();
      const images = await listImages(storage);
      return json(200, { container: storage.names.images, count: images.length, images });
    }),

    putImage: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const name = validImageName(request.params.name);
      const type = mediaType(request);
      if (type && !type.startsWith('image/') && type !== 'application/octet-stream') {
        const detail = `Expected the image bytes with Content-Type image/* but received ${type}`;
        throw new AppError('unsupported_media_type', detail);
      }
      const stored = await storeUpload(getStorage(), await readBody(request, settings.maxBodyBytes), settings, name);
      const location = `${new URL(request.url).origin}/api/images/${encodeURIComponent(name)}`;
      return json(201, stored, { location });
    }),

    getImage: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const { data, contentType } = await readImage(getStorage(), validImageName(request.params.name));
      return {
        status: 200,
        body: data,
        headers: { 'content-type': contentType, 'content-length': String(data.length) },
      };
    }),

    getImageInfo: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const name = validImageName(request.params.name);
      const { data } = await readImage(getStorage(), name);
      return json(200, { name, ...(await describeImage(data)) });
    }),
  };
}
