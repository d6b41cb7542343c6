/**
 * scripts/zip.ts, read back with yauzl: the entries in the order given with their contents, unix modes, one DOS
 * timestamp and deflate (stored when that is not smaller); the same bytes whatever the number of workers; zip64
 * end records past 65,535 entries; a file that cannot be read fails, naming it, and leaves no zip behind.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import yauzl from 'yauzl';
import { writeZip, type ZipEntry } from '../../../scripts/zip';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'zip-unit-'));
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

interface ReadEntry {
  name: string;
  mode: number;
  method: number;
  madeBy: number;
  dosDate: number;
  dosTime: number;
  data: Buffer;
}

/** Every entry, with its data unless `withData` is false (then only the central directory is read). */
async function readZip(file: string, withData = true): Promise<{ entries: ReadEntry[]; count: number }> {
  const zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false });
  const entries: ReadEntry[] = [];
  await new Promise<void>((resolve, reject) => {
    zip.on('error', reject).on('end', resolve);
    zip.on('entry', (entry: yauzl.Entry) => {
      if (!withData) {
        entries.push({ name: entry.fileName } as ReadEntry);
        return zip.readEntry();
      }
      zip.openReadStream(entry, (err, stream) => {
        if (err) return reject(err);
        const chunks: Buffer[] = [];
        stream
          .on('data', (chunk: Buffer) => chunks.push(chunk))
          .on('error', reject)
          .on('end', () => {
            const data = Buffer.concat(chunks);
            expect(crc32(data)).toBe(entry.crc32);
            entries.push({
              name: entry.fileName,
              mode: entry.externalFileAttributes >>> 16,
              method: entry.compressionMethod,
              madeBy: entry.versionMadeBy >> 8,
              dosDate: entry.lastModFileDate,
              dosTime: entry.lastModFileTime,
              data,
            });
            zip.readEntry();
          });
      });
    });
    zip.readEntry();
  });
  const count = zip.entryCount;
  zip.close();
  return { entries, count };
}

function file(name: string, content: Buffer | string, mode = 0o644): string {
  const target = path.join(dir, name);
  writeFileSync(target, content);
  chmodSync(target, mode);
  return target;
}

it('holds every entry in the order given, with its content, unix mode and the one timestamp', async () => {
  const text = 'the same line again and again\n'.repeat(200);
  const noise = randomBytes(5000);
  const entries: ZipEntry[] = [
    { name: 'b/run', source: file('run', `#!/bin/sh\n${'echo hi\n'.repeat(20)}`, 0o755), mode: 0o755 },
    { name: 'a/text.txt', source: file('text', text), mode: 0o644 },
    { name: 'a/empty', source: file('empty', ''), mode: 0o600 },
    { name: 'noise.bin', source: file('noise', noise), mode: 0o644 },
    { name: 'package.json', source: Buffer.from('{"name":"x"}\n'), mode: 0o644 },
    { name: 'ünïcode/名前.js', source: Buffer.from('module.exports = 1;\n'), mode: 0o644 },
  ];
  const out = path.join(dir, 'out.zip');
  await writeZip(entries, out, 2);
  const { entries: read, count } = await readZip(out);
  expect(count).toBe(entries.length);
  expect(read.map((e) => e.name)).toEqual(entries.map((e) => e.name));
  expect(read.map((e) => e.data.toString('latin1'))).toEqual(
    entries.map((e) => (typeof e.source === 'string' ? readFileSync(e.source) : e.source).toString('latin1')),
  );
  // regular files made on unix with their modes, as Info-ZIP's unzip restores them
  expect(read.map((e) => e.mode)).toEqual(entries.map((e) => 0o100000 | e.mode));
  expect(new Set(read.map((e) => e.madeBy))).toEqual(new Set([3]));
  // 2000-01-01 00:00:00 in DOS fields
  expect(new Set(read.map((e) => `${e.dosDate}/${e.dosTime}`))).toEqual(new Set([`${(20 << 9) | (1 << 5) | 1}/0`]));
  const method = Object.fromEntries(read.map((e) => [e.name, e.method]));
  expect(method['a/text.txt']).toBe(8);
  expect(method['b/run']).toBe(8);
  // random bytes and an empty file do not get smaller: stored as they are
  expect(method['noise.bin']).toBe(0);
  expect(method['a/empty']).toBe(0);
  expect(readFileSync(out).length).toBeLessThan(text.length);
  expect(readdirSync(dir).filter((f) => f.includes('partial'))).toEqual([]);
});

it('writes the same bytes whatever the number of workers', async () => {
  const entries: ZipEntry[] = Array.from({ length: 700 }, (_, i) => ({
    name: `f/${String(i).padStart(4, '0')}.js`,
    source: i % 2 ? file(`f${i}`, `module.exports = ${i};\n`.repeat(i % 50)) : Buffer.from(`// ${i}\n`),
    mode: i % 7 ? 0o644 : 0o755,
  }));
  const zips = await Promise.all(
    [1, 2, 5].map(async (workers) => {
      const out = path.join(dir, `${workers}.zip`);
      await writeZip(entries, out, workers);
      return readFileSync(out);
    }),
  );
  expect(zips[1].equals(zips[0])).toBe(true);
  expect(zips[2].equals(zips[0])).toBe(true);
  const { entries: read } = await readZip(path.join(dir, '1.zip'));
  expect(read.map((e) => e.name)).toEqual(entries.map((e) => e.name));
});

it('adds the zip64 end records once the entries outnumber what the plain end record counts', async () => {
  const entries: ZipEntry[] = Array.from({ length: 65536 }, (_, i) => ({
    name: `m/${i}`,
    source: Buffer.from(String(i)),
    mode: 0o644,
  }));
  const out = path.join(dir, 'many.zip');
  await writeZip(entries, out);
  const { entries: read, count } = await readZip(out, false);
  expect(count).toBe(65536);
  expect(read.map((e) => e.name)).toEqual(entries.map((e) => e.name));
}, 120000);

it('fails naming a file it cannot read, and leaves no zip behind', async () => {
  const out = path.join(dir, 'out.zip');
  const entries: ZipEntry[] = [
    { name: 'a', source: file('a', 'a'), mode: 0o644 },
    { name: 'gone', source: path.join(dir, 'gone'), mode: 0o644 },
  ];
  await expect(writeZip(entries, out)).rejects.toThrow(/cannot read .*gone: ENOENT/);
  expect(existsSync(out)).toBe(false);
  expect(readdirSync(dir).filter((f) => f.endsWith('.zip') || f.includes('partial'))).toEqual([]);
});
