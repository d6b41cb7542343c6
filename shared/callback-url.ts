/**
 * Where a completion callback may go (SSRF guard). A callback URL is an absolute https URL of at most
 * MAX_CALLBACK_URL_CHARS, without credentials, whose host resolves only to public addresses: every
 * address DNS answers is checked (an attacker's name may answer a public and a private one), and a
 * literal IP is checked as it is. Refused: loopback, link-local (the cloud metadata endpoint
 * 169.254.169.254 included), private, CGNAT, unspecified, multicast and reserved ranges, and their
 * IPv4-mapped IPv6 forms, and IPv6 translation and tunnel ranges (local-use NAT64, Teredo) whose IPv4 end
 * cannot be judged. CALLBACK_ALLOW_PRIVATE=true (development, tests, a receiver on a private
 * network) lifts the address check and allows http.
 *
 * The check runs at submit (a clear 400) and again at every delivery, on the very addresses the
 * connection then uses (`vettedLookup`): a name that resolved to a public address at submit and to
 * 127.0.0.1 later (DNS rebinding) is refused, not connected to.
 */
import dns from 'node:dns';
import net from 'node:net';
import type { FieldProblem } from './errors';
import { fieldProblem } from './validation';

export const MAX_CALLBACK_URL_CHARS = 2048;

export interface ResolvedAddress {
  readonly address: string;
  readonly family: number;
}

/** Every address a host name resolves to (dns.lookup: what the OS resolver, hosts file included, would connect to). */
export type Resolver = (hostname: string) => Promise<readonly ResolvedAddress[]>;

export const systemResolver: Resolver = (hostname) => dns.promises.lookup(hostname, { all: true, verbatim: true });

export interface CallbackPolicy {
  /** CALLBACK_ALLOW_PRIVATE: private addresses and http allowed. */
  readonly allowPrivate: boolean;
  readonly resolve?: Resolver;
}

/** IPv4 ranges no callback may reach: [first address, prefix length, what it is]. */
const BLOCKED_V4: ReadonlyArray<readonly [string, number, string]> = [
  ['0.0.0.0', 8, 'this network (0.0.0.0/8)'],
  ['10.0.0.0', 8, 'private (10.0.0.0/8)'],
  ['100.64.0.0', 10, 'carrier-grade NAT (100.64.0.0/10)'],
  ['127.0.0.0', 8, 'loopback (127.0.0.0/8)'],
  ['169.254.0.0', 16, 'link-local, cloud metadata included (169.254.0.0/16)'],
  ['172.16.0.0', 12, 'private (172.16.0.0/12)'],
  ['192.0.0.0', 24, 'IETF protocol assignments (192.0.0.0/24)'],
  ['192.0.2.0', 24, 'documentation (192.0.2.0/24)'],
  ['192.168.0.0', 16, 'private (192.168.0.0/16)'],
  ['198.18.0.0', 15, 'benchmarking (198.18.0.0/15)'],
  ['198.51.100.0', 24, 'documentation (198.51.100.0/24)'],
  ['203.0.113.0', 24, 'documentation (203.0.113.0/24)'],
  ['224.0.0.0', 4, 'multicast (224.0.0.0/4)'],
  ['240.0.0.0', 4, 'reserved and broadcast (240.0.0.0/4)'],
];

/** IPv6 ranges no callback may reach (IPv4-mapped, NAT64 and 6to4 forms are checked as their IPv4 address). */
const BLOCKED_V6: ReadonlyArray<readonly [string, number, string]> = [
  ['::', 128, 'unspecified (::)'],
  ['::1', 128, 'loopback (::1)'],
  ['fc00::', 7, 'unique local (fc00::/7)'],
  ['fe80::', 10, 'link-local (fe80::/10)'],
  ['fec0::', 10, 'site-local (fec0::/10)'],
  ['ff00::', 8, 'multicast (ff00::/8)'],
  ['2001:db8::', 32, 'documentation (2001:db8::/32)'],
  ['100::', 64, 'discard-only (100::/64)'],
  // a translator or tunnel on the way hands the connection to an IPv4 address these bits do not show plainly
  ['64:ff9b:1::', 48, 'local-use IPv4/IPv6 translation (64:ff9b:1::/48)'],
  ['2001::', 32, 'Teredo (2001::/32)'],
  ['2001:2::', 48, 'benchmarking (2001:2::/48)'],
];

function v4Bits(address: string): bigint {
  return address.split('.').reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n);
}

/** The 128 bits of an IPv6 address (`::` and an embedded dotted IPv4 tail expanded). */
function v6Bits(address: string): bigint {
  let text = address.replace(/%.*$/, '');
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = v4Bits(dotted[1]);
    text = `${text.slice(0, -dotted[1].length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? left : [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g || '0', 16)), 0n);
}

const inPrefix = (bits: bigint, base: bigint, prefix: number, width: number): boolean =>
  bits >> BigInt(width - prefix) === base >> BigInt(width - prefix);

/** Why an address may not receive a callback (which range it is in), or undefined for a public address. */
export function blockedRange(address: string): string | undefined {
  const family = net.isIP(address);
  if (family === 4) {
    const bits = v4Bits(address);
    return BLOCKED_V4.find(([base, prefix]) => inPrefix(bits, v4Bits(base), prefix, 32))?.[2];
  }
  if (family !== 6) return `not an IP address`;
  const bits = v6Bits(address);
  // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an
  // IPv4 address that some stacks connect to: they are judged as that address
  const embedded =
    bits >> 32n === 0xffffn || (bits >> 32n === 0n && bits > 1n) || inPrefix(bits, v6Bits('64:ff9b::'), 96, 128)
      ? bits & 0xffffffffn
      : inPrefix(bits, v6Bits('2002::'), 16, 128)
        ? (bits >> 80n) & 0xffffffffn
        : undefined;
  if (embedded !== undefined) {
    const v4 = [24n, 16n, 8n, 0n].map((s) => String((embedded >> s) & 0xffn)).join('.');
    const why = blockedRange(v4);
    return why && `${why}, as IPv6 ${address}`;
  }
  return BLOCKED_V6.find(([base, prefix]) => inPrefix(bits, v6Bits(base), prefix, 128))?.[2];
}

const EXPECTED = `an absolute https URL of at most ${MAX_CALLBACK_URL_CHARS} characters, without credentials, whose host resolves to public addresses only`;

/** The URL's host as DNS and net.isIP take it (IPv6 literals without their brackets). */
const hostOf = (url: URL): string => url.hostname.replace(/^\[(.*)\]$/, '$1');

/** The problem with a callback URL's shape (no DNS), or the parsed URL. */
export function callbackUrlShape(raw: unknown, allowPrivate: boolean): URL | FieldProblem {
  const field = 'callback_url';
  if (typeof raw !== 'string' || raw.length === 0) return fieldProblem(field, EXPECTED, raw);
  if (raw.length > MAX_CALLBACK_URL_CHARS) {
    const received = `a string of ${raw.length} characters`;
    return {
      field,
      expected: EXPECTED,
      received,
      message: `Expected ${EXPECTED} for ${field} but received ${received}`,
    };
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fieldProblem(field, EXPECTED, raw);
  }
  const schemes = allowPrivate ? ['https:', 'http:'] : ['https:'];
  if (!schemes.includes(url.protocol)) {
    const why = allowPrivate ? 'an http or https URL' : 'an https URL (http only with CALLBACK_ALLOW_PRIVATE=true)';
    return fieldProblem(field, why, raw);
  }
  if (url.username || url.password) {
    // the URL is stored and shown on the job: credentials belong in the signature, not in it
    return fieldProblem(
      field,
      'a URL without user name or password (the signature authenticates the call)',
      `a URL with credentials for ${url.host}`,
    );
  }
  return url;
}

/** The addresses a callback to `url` may connect to, or why it may not (which address, which range). */
export async function vetHost(
  url: URL,
  policy: CallbackPolicy,
): Promise<{ addresses: readonly ResolvedAddress[] } | { refused: string }> {
  const host = hostOf(url);
  const family = net.isIP(host);
  let addresses: readonly ResolvedAddress[];
  if (family !== 0) addresses = [{ address: host, family }];
  else {
    try {
      addresses = await (policy.resolve ?? systemResolver)(host);
    } catch (err) {
      return { refused: `host ${host} does not resolve (${(err as { code?: string }).code ?? String(err)})` };
    }
    if (addresses.length === 0) return { refused: `host ${host} resolves to no address` };
  }
  if (policy.allowPrivate) return { addresses };
  for (const { address } of addresses) {
    const why = blockedRange(address);
    if (why) return { refused: `host ${host} resolves to ${address}, ${why}` };
  }
  return { addresses };
}

/** A checked callback URL (submit time), or the problem to answer 400 with. */
export async function checkCallbackUrl(raw: unknown, policy: CallbackPolicy): Promise<URL | FieldProblem> {
  const url = callbackUrlShape(raw, policy.allowPrivate);
  if (!(url instanceof URL)) return url;
  const vetted = await vetHost(url, policy);
  if ('refused' in vetted) {
    const expected = `a callback URL whose host resolves to public addresses only (private, loopback and link-local addresses need CALLBACK_ALLOW_PRIVATE=true)`;
    return {
      field: 'callback_url',
      expected,
      received: vetted.refused,
      message: `Expected ${expected} for callback_url but received ${vetted.refused}`,
    };
  }
  return url;
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | dns.LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for http.request that resolves, checks every address and hands the connection only the checked
 * ones: the address checked is the address connected to, so no second resolution can slip another in.
 */
export function vettedLookup(policy: CallbackPolicy) {
  return (hostname: string, options: dns.LookupOptions, callback: LookupCallback): void => {
    vetHost(new URL(`http://${net.isIPv6(hostname) ? `[${hostname}]` : hostname}`), policy).then(
      (vetted) => {
        if ('refused' in vetted) {
          callback(Object.assign(new Error(`callback refused: ${vetted.refused}`), { code: 'ECALLBACKREFUSED' }), '');
          return;
        }
        const usable = vetted.addresses.filter((a) => !options.family || a.family === options.family);
        if (usable.length === 0) {
          callback(
            Object.assign(new Error(`no IPv${options.family} address for ${hostname}`), { code: 'ENOTFOUND' }),
            '',
          );
          return;
        }
        if (options.all)
          callback(
            null,
            usable.map((a) => ({ address: a.address, family: a.family })),
          );
        else callback(null, usable[0].address, usable[0].family);
      },
      (err: unknown) => callback(err as NodeJS.ErrnoException, ''),
    );
  };
}
