/**
 * Images in blob storage, in one place: inputs in the `images` container (uploads and samples) and
 * results in `processed`. This module owns their blob names, content types and metadata.
 */
import { randomUUID } from 'node:crypto';
import type { BlobRequestConditions } from '@azure/storage-blob';
import { AppError, PermanentError, ValidationError } from '../errors';
import { checkUpload } from '../imaging/header';
import { contentTypeOf, extensionOf } from '../imaging/input';
import type { Limits } from '../imaging/limits';
import type { ProcessedImage } from '../imaging/pipeline';
import { fieldProblem } from '../validation';
import { isStatus, type Storage } from './clients';

/** Blob names users may give: no path tricks, no control characters. */
export const IMAGE_NAME = /^(?!\.)(?!.*\.\.)[A-Za-z0-9._-]{1,200}$/;

export function validImageName(name: unknown, field = 'name'): string {
  if (typeof name !== 'string' || !IMAGE_NAME.test(name)) {
    const expected =
      'an image name of 1-200 letters, digits, dots, dashes or underscores, not starting with a dot and without ".."';
    throw new ValidationError([fieldProblem(field, expected, name)]);
  }
  return name;
}

export interface StoredImage {
  readonly name: string;
  readonly content_type: string;
  readonly bytes: number;
}

export interface ListedImage {
  readonly name: string;
  readonly bytes: number;
  readonly content_type: string | null;
  readonly last_modified: string | null;
}

export async function listImages(storage: Storage): Promise<ListedImage[]> {
  const images: ListedImage[] = [];
  for await (const blob of storage.images.listBlobsFlat()) {
    images.push({
      name: blob.name,
      bytes: blob.properties.contentLength ?? 0,
      content_type: blob.properties.contentType ?? null,
      last_modified: blob.properties.lastModified?.toISOString() ?? null,
    });
  }
  return images;
}

/**
 * Metadata of the sample images `npm start` seeds into an empty `images` container: retention never removes
 * them (they are the default input of a job that names no images). Uploads carry no such metadata.
 */
export const SAMPLE_METADATA = Object.freeze({ origin: 'sample' });

export const isSampleImage = (blob: { readonly metadata?: Record<string, string> }): boolean =>
  blob.metadata?.origin === SAMPLE_METADATA.origin;

/** The names among `names` that are not in the `images` container, each looked up once. */
export async function missingImages(storage: Storage, names: readonly string[]): Promise<string[]> {
  const unique = [...new Set(names)];
  const found = await Promise.all(unique.map((name) => storage.images.getBlockBlobClient(name).exists()));
  return unique.filter((_, i) => !found[i]);
}

/** An input image's bytes; a missing image is permanent (retrying cannot make it appear). */
export async function readImage(storage: Storage, name: string): Promise<{ data: Buffer; contentType: string }> {
  try {
    const response = await storage.images.getBlockBlobClient(name).download();
    const data = await streamToBuffer(response.readableStreamBody);
    return { data, contentType: response.contentType ?? 'application/octet-stream' };
  } catch (err) {
    if (!isStatus(err, 404)) throw err;
    throw new PermanentError('image_not_found', `No image named '${name}' in the ${storage.names.images} container`);
  }
}

/** An upload that passed checkUpload and has its blob name, not yet stored. */
export interface CheckedUpload {
  readonly name: string;
  readonly data: Buffer;
  readonly contentType: string;
}

const MAX_STEM = 60;

/**
 * A file name reduced to IMAGE_NAME's alphabet, for a generated blob name. The directory part (after
 * the last `/` or `\`) and the extension are dropped (the extension comes from the sniffed format);
 * the rest is Unicode-decomposed (NFD) and its combining marks dropped, so the composed and decomposed
 * spellings of a name give one stem and `Café` gives `Cafe`; every run of other characters becomes
 * one dash; at most 60 characters are kept, without a leading or trailing dot or dash; `upload` when
 * nothing is left.
 */
export function safeStem(filename: string | undefined): string {
  const base = (filename ?? '').split(/[/\\]/).pop() ?? '';
  const withoutExt = base.includes('.') ? base.slice(0, base.lastIndexOf('.')) : base;
  const stem = withoutExt
    .normalize('NFD')
    .replace(/\p{M}+/gu, '')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/^[.-]+/, '')
    .slice(0, MAX_STEM)
    .replace(/[.-]+$/, '');
  return stem || 'upload';
}

/** `<safe stem>-<12 hex>.<ext>`: the user's file name stays recognisable, and two uploads never share a blob. */
function generatedName(filename: string | undefined, ext: string): string {
  return `${safeStem(filename)}-${randomUUID().replaceAll('-', '').slice(0, 12)}.${ext}`;
}

/**
 * Checks the bytes are a whole, accepted image within the limits and names its blob: `name` exactly
 * when given, otherwise a generated name after `filename`. Nothing is stored, so a request with
 * several images checks them all before storing any.
 */
export async function checkedUpload(
  data: Buffer,
  limits: Limits,
  as: { name?: string; filename?: string } = {},
): Promise<CheckedUpload> {
  const { format } = await checkUpload(data, limits);
  const name = as.name ?? generatedName(as.filename, extensionOf(format));
  return { name, data, contentType: contentTypeOf(format) };
}

function writeUpload(storage: Storage, upload: CheckedUpload, conditions: BlobRequestConditions) {
  return storage.images.getBlockBlobClient(upload.name).uploadData(upload.data, {
    blobHTTPHeaders: { blobContentType: upload.contentType },
    conditions,
  });
}

const stored = (upload: CheckedUpload): StoredImage => ({
  name: upload.name,
  content_type: upload.contentType,
  bytes: upload.data.length,
});

/**
 * Stores checked uploads under generated names: all of them, or (when one fails) none, as far as
 * storage lets us: the ones already written are deleted again. Each is written only if no blob has
 * its name (If-None-Match: *), so an upload never replaces another.
 */
export async function storeUploads(storage: Storage, uploads: readonly CheckedUpload[]): Promise<StoredImage[]> {
  await storage.ensureResources();
  const results = await Promise.allSettled(
    uploads.map(async (upload) => {
      await writeUpload(storage, upload, { ifNoneMatch: '*' });
      return stored(upload);
    }),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (!failed) return results.map((r) => (r as PromiseFulfilledResult<StoredImage>).value);
  await Promise.allSettled(
    results.flatMap((r, i) => (r.status === 'fulfilled' ? [storage.images.deleteBlob(uploads[i].name)] : [])),
  );
  throw failed.reason;
}

/**
 * What a user-named upload (PUT /api/images/{name}) does to an image already under its name:
 * `create` writes only when there is none (the default), `replace` writes in any case, `if_match`
 * only over the image whose ETag is given.
 */
export type WriteMode =
  { readonly kind: 'create' } | { readonly kind: 'replace' } | { readonly kind: 'if_match'; readonly etag: string };

export interface PutImageResult {
  readonly image: StoredImage;
  /** False when an existing image was replaced. */
  readonly created: boolean;
  readonly etag: string | undefined;
}

/**
 * Checks and stores one image under the name the user chose. Every write carries its condition to
 * storage, so there is no check-then-write race: of two concurrent creates, one gets `image_exists`.
 * `replace` first tries to create, to tell a new image (201) from a replaced one (200).
 */
export async function putImage(
  storage: Storage,
  data: Buffer,
  limits: Limits,
  name: string,
  mode: WriteMode,
): Promise<PutImageResult> {
  const upload = await checkedUpload(data, limits, { name });
  await storage.ensureResources();
  const write = (conditions: BlobRequestConditions) => writeUpload(storage, upload, conditions);
  try {
    if (mode.kind === 'if_match') {
      const { etag } = await write({ ifMatch: mode.etag });
      return { image: stored(upload), created: false, etag };
    }
    const { etag } = await write({ ifNoneMatch: '*' });
    return { image: stored(upload), created: true, etag };
  } catch (err) {
    if (mode.kind === 'replace' && isConflict(err)) {
      const { etag } = await write({});
      return { image: stored(upload), created: false, etag };
    }
    if (mode.kind === 'create' && isConflict(err)) {
      throw new AppError(
        'image_exists',
        `An image named '${name}' already exists in the ${storage.names.images} container; ` +
          'PUT with ?overwrite=true to replace it, or DELETE it first',
      );
    }
    if (mode.kind === 'if_match' && (isStatus(err, 412) || isStatus(err, 404))) {
      throw new AppError(
        'precondition_failed',
        isStatus(err, 404)
          ? `If-Match ${mode.etag} was sent but there is no image named '${name}'`
          : `If-Match ${mode.etag} does not match the ETag of the image '${name}': it changed since you read it`,
      );
    }
    throw err;
  }
}

/** An If-None-Match: * write over an existing blob: 409 BlobAlreadyExists (Azure), 412 from some emulators. */
const isConflict = (err: unknown) => isStatus(err, 409) || isStatus(err, 412);

/** Deletes an uploaded image (never a result); a missing one is `image_not_found`. */
export async function deleteImage(storage: Storage, name: string): Promise<void> {
  await storage.ensureResources();
  try {
    await storage.images.getBlockBlobClient(name).delete({ deleteSnapshots: 'include' });
  } catch (err) {
    if (!isStatus(err, 404)) throw err;
    throw new PermanentError('image_not_found', `No image named '${name}' in the ${storage.names.images} container`);
  }
}

/** The result of a task as the task record keeps it. */
export interface TaskResult {
  readonly blob: string;
  readonly format: string;
  readonly content_type: string;
  readonly width: number;
  readonly height: number;
  readonly bytes: number;
}

/** What a result blob records about its task, as blob metadata (ASCII only). */
export interface ResultOrigin {
  readonly task_id: string;
  readonly job_id: string;
  readonly filters: readonly { readonly name: string }[];
  /** The claim (worker id and attempt) that produced it, so a second write by another run shows. */
  readonly claim?: string;
}

/**
 * Writes a task's result under a name fixed by the task (so a redelivered message overwrites, never
 * duplicates), with its content type and the task it came from as metadata.
 */
export async function writeResult(storage: Storage, origin: ResultOrigin, result: ProcessedImage): Promise<TaskResult> {
  const { info } = result;
  const blob = `${origin.task_id}.${extensionOf(info.format)}`;
  await storage.processed.getBlockBlobClient(blob).uploadData(result.data, {
    blobHTTPHeaders: { blobContentType: info.content_type },
    metadata: {
      task_id: origin.task_id,
      job_id: origin.job_id,
      filters: asciiMetadata(origin.filters.map((f) => f.name).join(',')),
      ...(origin.claim ? { claim: asciiMetadata(origin.claim) } : {}),
    },
  });
  const { format, content_type, width, height, bytes } = info;
  return { blob, format, content_type, width, height, bytes };
}

export async function readResult(storage: Storage, result: TaskResult): Promise<Buffer> {
  return storage.processed.getBlockBlobClient(result.blob).downloadToBuffer();
}

/** Blob metadata values must be ASCII. */
function asciiMetadata(value: string): string {
  return value.replace(/[^\x20-\x7e]/g, '?');
}

async function streamToBuffer(stream: NodeJS.ReadableStream | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream ?? []) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}
