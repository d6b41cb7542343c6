/**
 * What Kestrel (the web server inside the Functions host) does with a request's target and Host
 * header before any function sees it, so the local host answers malformed requests the same way:
 * - the Host header is checked by `HttpUtilities.IsHostHeaderValid`
 *   (dotnet/aspnetcore src/Servers/Kestrel/Core/src/Internal/Infrastructure/HttpUtilities.cs):
 *   empty is allowed, `[ipv6]` with an optional port, or host characters with an optional `:port`;
 *   anything else is a 400 (RequestRejectionReason.InvalidHostHeader);
 * - the path is percent-decoded leniently by `UrlDecoder.DecodeInPlace`
 *   (dotnet/aspnetcore src/Shared/UrlDecoder/UrlDecoder.cs): an escape that is not hex, a byte
 *   sequence that is not valid UTF-8 (overlong forms, surrogates, above U+10FFFF) and `%2F` stay as
 *   literal text; `%00` is refused (400, invalid request target);
 * - dot segments are then removed (`PathNormalizer.RemoveDotSegments`,
 *   src/Servers/Kestrel/Core/src/Internal/Http/PathNormalizer.cs).
 */

/** Thrown for a request Kestrel answers 400 before routing. */
export class BadRequestTarget extends Error {}

const HOST_CHARS = /^[A-Za-z0-9!$&'()*+,;=._~%-]+$/;
const PORT = /^:\d*$/;

export function isHostHeaderValid(host: string): boolean {
  if (host === '') return true;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 4 || !/^[0-9A-Fa-f:.]+$/.test(host.slice(1, end))) return false;
    return end + 1 === host.length || PORT.test(host.slice(end + 1));
  }
  if (host.startsWith(':')) return false;
  const colon = host.indexOf(':');
  const name = colon < 0 ? host : host.slice(0, colon);
  return HOST_CHARS.test(name) && (colon < 0 || PORT.test(host.slice(colon)));
}

const hexValue = (c: number): number =>
  c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;

/** The byte `%XX` at `i` stands for, or -1 (not an escape, or `%2F`, which stays encoded). */
function escapedByte(bytes: Buffer, i: number): number {
  if (bytes[i] !== 0x25 || i + 2 >= bytes.length) return -1;
  const hi = hexValue(bytes[i + 1]);
  const lo = hexValue(bytes[i + 2]);
  if (hi < 0 || lo < 0 || (hi === 2 && lo === 15)) return -1;
  return (hi << 4) + lo;
}

/** Decodes one UTF-8 sequence of escapes at `i` to its bytes and end, or undefined to keep it literal. */
function decodeSequence(bytes: Buffer, i: number): { out: number[]; end: number } | undefined {
  const first = escapedByte(bytes, i);
  if (first < 0) return undefined;
  if (first === 0) throw new BadRequestTarget('The path contains a null character (%00)');
  if (first <= 0x7f) return { out: [first], end: i + 3 };
  const [count, bits, min] =
    (first & 0xe0) === 0xc0
      ? [2, first & 0x1f, 0x80]
      : (first & 0xf0) === 0xe0
        ? [3, first & 0x0f, 0x800]
        : (first & 0xf8) === 0xf0
          ? [4, first & 0x07, 0x10000]
          : [0, 0, 0];
  if (count === 0) return undefined;
  const out = [first];
  let value = bits;
  let at = i + 3;
  for (let remaining = count - 1; remaining > 0; remaining--) {
    const next = escapedByte(bytes, at);
    if (next < 0 || (next & 0xc0) !== 0x80) return undefined;
    value = (value << 6) | (next & 0x3f);
    if (count === 4 && remaining === 3 && value >= 0x110) return undefined; // above U+10FFFF
    if (count === 3 && remaining === 2 && value >= 0x360 && value <= 0x37f) return undefined; // a surrogate
    out.push(next);
    at += 3;
  }
  if (value < min) return undefined; // overlong
  return { out, end: at };
}

/** Kestrel's lenient path decoding: what it cannot decode stays as written. */
export function decodePath(raw: string): string {
  const bytes = Buffer.from(raw, 'latin1');
  const out: number[] = [];
  for (let i = 0; i < bytes.length;) {
    const decoded = bytes[i] === 0x25 ? decodeSequence(bytes, i) : undefined;
    if (decoded) {
      out.push(...decoded.out);
      i = decoded.end;
    } else out.push(bytes[i++]);
  }
  return removeDotSegments(Buffer.from(out).toString('utf8'));
}

/** RFC 3986 section 5.2.4, as Kestrel applies it to the decoded path. */
export function removeDotSegments(path: string): string {
  const output: string[] = [];
  for (const segment of path.split('/').slice(1)) {
    if (segment === '..') output.pop();
    else if (segment !== '.') output.push(segment);
  }
  const last = path.split('/').pop();
  if (last === '.' || last === '..') output.push('');
  return `/${output.join('/')}`;
}
