/**
 * A plain zip writer for `npm run package` (scripts/package.ts): tens of thousands of small files, deflated with
 * node's own zlib, written in the order given. Each entry is read, checksummed and deflated whole in a worker
 * thread (one per core), a batch of entries at a time; the main thread writes the batches in order, with a few
 * in flight, so memory stays bounded by the batches and not by the tree.
 *
 * What it writes (APPNOTE.TXT, the PKWARE zip specification): a local header before each entry's data with its
 * CRC-32 and sizes (no data descriptors), a central directory and its end record; zip64 end records only once the
 * entries outnumber what the plain record can count (65,535). Every entry has the same DOS timestamp, the file
 * type and unix mode in its external attributes (made by unix, as Info-ZIP's unzip reads them), and is deflated,
 * or stored when deflating would not make it smaller. The bytes depend on the entries alone: not on the clock,
 * the time zone, the files' timestamps or the number of workers.
 */
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import { Worker } from 'node:worker_threads';

export interface ZipEntry {
  /** Path inside the zip, with forward slashes. */
  readonly name: string;
  /** The file on disk, or the content itself. */
  readonly source: string | Buffer;
  readonly mode: number;
}

/** 2000-01-01 00:00:00 as DOS date and time fields (local time in the format, so the same in every zone). */
const DOS_DATE = ((2000 - 1980) << 9) | (1 << 5) | 1;
const DOS_TIME = 0;
const VERSION = 20; // 2.0: deflate
const MADE_BY_UNIX = (3 << 8) | VERSION;
const UTF8_NAMES = 0x0800;
const STORED = 0;
const DEFLATED = 8;
const REGULAR_FILE = 0o100000;
const MAX_16 = 0xffff;
const MAX_32 = 0xffffffff;

/** Entries per batch handed to a worker, and the batches in flight per worker: what bounds the memory. */
const BATCH_FILES = 128;
const BATCH_BYTES = 4 * 1024 * 1024;
const IN_FLIGHT_PER_WORKER = 2;

/** One batch, packed: each entry's CRC-32, sizes and method, and their data one after another in one buffer. */
interface PackedBatch {
  readonly id: number;
  readonly crc: Uint32Array;
  readonly size: Float64Array;
  readonly stored: Float64Array;
  readonly method: Uint8Array;
  readonly data: ArrayBuffer;
}

/**
 * The worker, as source (it runs from `eval`, so the same code works from dist/ and under ts-jest): reads every
 * entry of a batch, deflates it at zlib's default level and sends the batch back in one transferred buffer.
 */
const WORKER = `
const { parentPort } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const zlib = require('node:zlib');
const table = new Int32Array(256).map((_, n) => {
  for (let k = 0; k < 8; k++) n = n & 1 ? 0xedb88320 ^ (n >>> 1) : n >>> 1;
  return n;
});
// zlib.crc32 is Node 20.15 and later; the engines field allows 20.9
const crc32 = zlib.crc32 || ((data) => {
  let crc = -1;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
});
parentPort.on('message', ({ id, sources }) => {
  try {
    const n = sources.length;
    const crc = new Uint32Array(n), size = new Float64Array(n), stored = new Float64Array(n), method = new Uint8Array(n);
    const parts = sources.map((source, i) => {
      let raw;
      try {
        raw = typeof source === 'string' ? readFileSync(source) : Buffer.from(source);
      } catch (err) {
        throw new Error('cannot read ' + source + ': ' + err.message);
      }
      const deflated = zlib.deflateRawSync(raw);
      const part = deflated.length < raw.length ? deflated : raw;
      crc[i] = crc32(raw);
      size[i] = raw.length;
      stored[i] = part.length;
      method[i] = part === raw ? ${STORED} : ${DEFLATED};
      return part;
    });
    const data = new ArrayBuffer(stored.reduce((a, b) => a + b, 0));
    let at = 0;
    for (const part of parts) {
      new Uint8Array(data, at, part.length).set(part);
      at += part.length;
    }
    parentPort.postMessage({ id, crc, size, stored, method, data }, [data]);
  } catch (err) {
    parentPort.postMessage({ id, error: err.message });
  }
});
`;

/** Consecutive entries, up to BATCH_FILES of them or BATCH_BYTES of content given as buffers. */
function batches(entries: readonly ZipEntry[]): ZipEntry[][] {
  const out: ZipEntry[][] = [];
  let current: ZipEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    if (current.length === BATCH_FILES || bytes > BATCH_BYTES) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    if (typeof entry.source !== 'string') bytes += entry.source.length;
  }
  if (current.length) out.push(current);
  return out;
}

/** Deflates the batches in workers; `write` gets each batch back in order, once every batch before it is written. */
async function deflateInWorkers(
  work: ZipEntry[][],
  workers: number,
  write: (batch: PackedBatch) => void,
): Promise<void> {
  if (!work.length) return;
  const pool = Array.from(
    { length: Math.max(1, Math.min(workers, work.length)) },
    () => new Worker(WORKER, { eval: true }),
  );
  try {
    await new Promise<void>((resolve, reject) => {
      const done = new Map<number, PackedBatch>();
      let sent = 0;
      let written = 0;
      let failed = false;
      const fail = (err: unknown) => {
        failed = true;
        reject(err instanceof Error ? err : new Error(String(err)));
      };
      const send = (worker: Worker) => {
        if (sent === work.length || sent - written >= pool.length * IN_FLIGHT_PER_WORKER) return false;
        const id = sent++;
        // a small Buffer is a view of a shared pool, which would be cloned whole: copied to one of its own size
        const sources = work[id].map((e) => (typeof e.source === 'string' ? e.source : new Uint8Array(e.source)));
        worker.postMessage({ id, sources });
        return true;
      };
      for (const worker of pool) {
        worker.on('error', fail);
        worker.on('message', (reply: PackedBatch | { id: number; error: string }) => {
          if (failed) return;
          if ('error' in reply) return fail(new Error(reply.error));
          done.set(reply.id, reply);
          try {
            for (let next = done.get(written); next; next = done.get(written)) {
              done.delete(written);
              write(next);
              written++;
            }
          } catch (err) {
            return fail(err);
          }
          if (written === work.length) return resolve();
          // whichever worker answered takes the next batches, as many as the window allows
          while (send(worker));
        });
      }
      for (let round = 0; round < IN_FLIGHT_PER_WORKER; round++) for (const worker of pool) send(worker);
    });
  } finally {
    await Promise.all(pool.map((worker) => worker.terminate()));
  }
}

function localHeader(name: Buffer, crc: number, size: number, stored: number, method: number): Buffer {
  const header = Buffer.alloc(30 + name.length);
  header.writeUInt32LE(0x04034b50, 0);
  header.writeUInt16LE(VERSION, 4);
  header.writeUInt16LE(UTF8_NAMES, 6);
  header.writeUInt16LE(method, 8);
  header.writeUInt16LE(DOS_TIME, 10);
  header.writeUInt16LE(DOS_DATE, 12);
  header.writeUInt32LE(crc, 14);
  header.writeUInt32LE(stored, 18);
  header.writeUInt32LE(size, 22);
  header.writeUInt16LE(name.length, 26);
  name.copy(header, 30);
  return header;
}

/** The entry's record in the central directory: what its local header says, its mode and where it starts. */
function centralHeader(local: Buffer, mode: number, offset: number): Buffer {
  const header = Buffer.alloc(16 + local.length);
  header.writeUInt32LE(0x02014b50, 0);
  header.writeUInt16LE(MADE_BY_UNIX, 4);
  local.copy(header, 6, 4, 30); // version needed, flags, method, time, date, CRC-32, sizes, name length
  // extra field, comment, disk number, internal attributes: none
  header.writeUInt32LE(((REGULAR_FILE | mode) << 16) >>> 0, 38);
  header.writeUInt32LE(offset, 42);
  local.copy(header, 46, 30);
  return header;
}

/** The end records: zip64 ones first when the plain record cannot count the entries. */
function endRecords(count: number, directorySize: number, directoryOffset: number): Buffer {
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Math.min(count, MAX_16), 8);
  end.writeUInt16LE(Math.min(count, MAX_16), 10);
  end.writeUInt32LE(directorySize, 12);
  end.writeUInt32LE(directoryOffset, 16);
  if (count < MAX_16) return end;
  const zip64End = Buffer.alloc(56);
  zip64End.writeUInt32LE(0x06064b50, 0);
  zip64End.writeBigUInt64LE(44n, 4);
  zip64End.writeUInt16LE((3 << 8) | 45, 12);
  zip64End.writeUInt16LE(45, 14);
  zip64End.writeBigUInt64LE(BigInt(count), 24);
  zip64End.writeBigUInt64LE(BigInt(count), 32);
  zip64End.writeBigUInt64LE(BigInt(directorySize), 40);
  zip64End.writeBigUInt64LE(BigInt(directoryOffset), 48);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(0x07064b50, 0);
  locator.writeBigUInt64LE(BigInt(directoryOffset + directorySize), 8);
  locator.writeUInt32LE(1, 16);
  return Buffer.concat([zip64End, locator, end]);
}

function writeAll(fd: number, data: Buffer): void {
  for (let at = 0; at < data.length;) at += writeSync(fd, data, at);
}

/**
 * Writes the entries, in the order given, as a zip at `out` (through a temporary file renamed at the end, so a
 * failure never leaves a partial zip there). Fails, naming the entry, past what a plain zip holds: 4 GiB.
 */
export async function writeZip(
  entries: readonly ZipEntry[],
  out: string,
  workers = Math.min(os.availableParallelism(), 8),
): Promise<void> {
  const partial = `${out}.partial`;
  let fd: number | undefined = openSync(partial, 'w');
  const directory: Buffer[] = [];
  let offset = 0;
  const work = batches(entries);
  try {
    await deflateInWorkers(work, workers, (batch) => {
      const parts: Buffer[] = [];
      let at = 0;
      work[batch.id].forEach((entry, i) => {
        if (offset > MAX_32 || batch.stored[i] > MAX_32 || batch.size[i] > MAX_32)
          throw new Error(`${entry.name} would end past 4 GiB, the most a zip without zip64 holds`);
        const header = localHeader(
          Buffer.from(entry.name),
          batch.crc[i],
          batch.size[i],
          batch.stored[i],
          batch.method[i],
        );
        parts.push(header, Buffer.from(batch.data, at, batch.stored[i]));
        directory.push(centralHeader(header, entry.mode, offset));
        at += batch.stored[i];
        offset += header.length + batch.stored[i];
      });
      writeAll(fd!, Buffer.concat(parts));
    });
    const central = Buffer.concat(directory);
    if (offset + central.length > MAX_32)
      throw new Error(`the zip would be ${offset + central.length} bytes, past 4 GiB, the most it holds without zip64`);
    writeAll(fd, Buffer.concat([central, endRecords(directory.length, central.length, offset)]));
    closeSync(fd);
    fd = undefined;
    renameSync(partial, out);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(partial, { force: true });
    throw err;
  }
}
