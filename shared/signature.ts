/**
 * Signatures of completion callbacks, as Stripe and GitHub sign webhooks: the header
 * `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with CALLBACK_SECRET>`.
 * The timestamp is signed with the body, so a captured request cannot be replayed later than the
 * receiver's tolerance; several v1 entries may appear (a secret being rotated), any one matching is
 * enough. `verifySignature` is what a receiver runs; it has no dependency outside node:crypto, so it
 * can be copied as it is.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-signature';

/** The hex HMAC-SHA256 of `<t>.<body>`. */
export function signatureOf(secret: string, timestamp: number, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/** The X-Signature header value for `body` sent at `now`. */
export function signatureHeader(secret: string, body: string | Buffer, now = new Date()): string {
  const t = Math.floor(now.getTime() / 1000);
  return `t=${t},v1=${signatureOf(secret, t, body)}`;
}

/**
 * Whether `header` (the X-Signature value) signs `body` (the raw request body, as received: not re-serialized
 * JSON) with `secret`, at a time at most `toleranceS` seconds from `now`. Compares in constant time.
 */
export function verifySignature(
  secret: string,
  header: string | null | undefined,
  body: string | Buffer,
  toleranceS = 300,
  now = new Date(),
): boolean {
  if (typeof header !== 'string' || header.length > 4096) return false;
  const parts = header.split(',').map((p) => p.trim().split('='));
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  if (!Number.isInteger(t) || Math.abs(now.getTime() / 1000 - t) > toleranceS) return false;
  const expected = Buffer.from(signatureOf(secret, t, body), 'hex');
  return parts
    .filter(([k, v]) => k === 'v1' && /^[0-9a-f]{64}$/i.test(v ?? ''))
    .some(([, v]) => timingSafeEqual(Buffer.from(v, 'hex'), expected));
}
