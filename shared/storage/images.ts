/**
 * Images in blob storage, in one place: inputs in the `images` container (uploads and samples) and
 * results in `processed`. This module owns their blob names, content types and metadata.
 */
import { randomUUID } from 'node:crypto';
import { PermanentError, ValidationError } from '../errors';
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
  /** True when the name was chosen by the user (PUT /api/images/{name}): it may replace a blob. */
  readonly exact: boolean;
}

const MAX_STEM = 60;

/**
 * A file name reduced to IMAGE_NAME's alphabet, for a generated blob name: the directory and the
 * extension are dropped (the extension comes from the sniffed format), every run of other characters
 * becomes one dash, and at most 60 characters are kept; `upload` when nothing is left.
 */
export function safeStem(filename: string | undefined): string {
  const base = (filename ?? '').split(/[/\\]/).pop() ?? '';
  const withoutExt = base.includes('.') ? base.slice(0, base.lastIndexOf('.')) : base;
  const stem = withoutExt
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/\.{2,}/g, '.')
    .slice(0, MAX_STEM)
    .replace(/^[.-]+|[.-]+$/g, '');
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
  return { name, data, contentType: contentTypeOf(format), exact: as.name !== undefined };
}

/**
 * Stores checked uploads: all of them, or (when one fails) none, as far as storage lets us: the
 * ones already written are deleted again. A generated name is written only if no blob has it.
 */
export async function storeUploads(storage: Storage, uploads: readonly CheckedUpload[]): Promise<StoredImage[]> {
  await storage.ensureResources();
  const results = await Promise.allSettled(
    uploads.map(async (upload) => {
      await storage.images.getBlockBlobClient(upload.name).uploadData(upload.data, {
        blobHTTPHeaders: { blobContentType: upload.contentType },
        ...(upload.exact ? {} : { conditions: { ifNoneMatch: '*' } }),
      });
      return { name: upload.name, content_type: upload.contentType, bytes: upload.data.length };
    }),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (!failed) return results.map((r) => (r as PromiseFulfilledResult<StoredImage>).value);
  await Promise.allSettled(
    results.flatMap((r, i) =>
      r.status === 'fulfilled' && !uploads[i].exact ? [storage.images.deleteBlob(uploads[i].name)] : [],
    ),
  );
  throw failed.reason;
}

/** Checks and stores one image under `name` (or a generated name). */
export async function storeUpload(storage: Storage, data: Buffer, limits: Limits, name?: string): Promise<StoredImage> {
  const [stored] = await storeUploads(storage, [await checkedUpload(data, limits, { name })]);
  return stored;
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
