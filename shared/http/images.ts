/**
 * Routes for the `images` container: list, upload, download, metadata and delete. An upload never
 * replaces an image unless asked: PUT creates (If-None-Match: * semantics, atomic in storage) and
 * answers 409 `image_exists` when the name is taken; `?overwrite=true` replaces, and `If-Match: <etag>`
 * replaces only that version of the image.
 */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { appSettings, type Settings } from '../config';
import { AppError, ValidationError } from '../errors';
import { describeImage } from '../imaging/header';
import type { Storage } from '../storage/clients';
import { deleteImage, listImages, putImage, readImage, validImageName, type WriteMode } from '../storage/images';
import { fieldProblem, unknownKeyProblems } from '../validation';
import { mediaType, readBody } from './body';
import { handled, json } from './respond';

/** Query parameters of PUT; `code` is the function key the Functions host reads from the query. */
const PUT_QUERY = ['overwrite', 'code'];

/**
 * What PUT does to an existing image: `If-Match: <etag>` replaces only that version; `If-None-Match: *`
 * never replaces (it wins over ?overwrite=true); otherwise ?overwrite=true replaces and the default
 * creates only.
 */
function writeMode(request: HttpRequest): WriteMode {
  const unknown = unknownKeyProblems(
    [...new Set(request.query.keys())],
    PUT_QUERY,
    (k) => `query.${k}`,
    'query parameter',
  );
  if (unknown.length) throw new ValidationError(unknown);
  const overwrite = request.query.get('overwrite');
  if (overwrite !== null && overwrite !== 'true' && overwrite !== 'false') {
    throw new ValidationError([fieldProblem('query.overwrite', 'true or false', overwrite)]);
  }
  const ifMatch = request.headers.get('if-match')?.trim();
  const ifNoneMatch = request.headers.get('if-none-match')?.trim();
  if (ifNoneMatch !== undefined && ifNoneMatch !== '*') {
    throw new ValidationError([fieldProblem('header.If-None-Match', '* (create only)', ifNoneMatch.slice(0, 100))]);
  }
  if (ifMatch && ifNoneMatch) {
    const detail = 'Send either If-Match (replace that version) or If-None-Match: * (create only), not both';
    throw new AppError('bad_request', detail);
  }
  if (ifMatch) return { kind: 'if_match', etag: ifMatch.slice(0, 200) };
  if (ifNoneMatch) return { kind: 'create' };
  return overwrite === 'true' ? { kind: 'replace' } : { kind: 'create' };
}

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
      const mode = writeMode(request);
      const data = await readBody(request, settings.maxBodyBytes);
      const { image, created, etag } = await putImage(getStorage(), data, settings, name, mode);
      const location = `${new URL(request.url).origin}/api/images/${encodeURIComponent(name)}`;
      return json(created ? 201 : 200, image, { location, ...(etag ? { etag } : {}) });
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

    deleteImage: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      await deleteImage(getStorage(), validImageName(request.params.name));
      return { status: 204 };
    }),
  };
}
