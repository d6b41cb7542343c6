/** Signing and verifying completion callbacks (X-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">). */
import { createHmac } from 'node:crypto';
import { signatureHeader, signatureOf, verifySignature } from '../../shared/signature';

const SECRET = 'k'.repeat(40);
const BODY = '{"id":"e1","type":"job.succeeded"}';
const NOW = new Date('2026-12-02T08:00:00Z');
const T = NOW.getTime() / 1000;

describe('callback signatures', () => {
  it('signs "<t>.<body>" with HMAC-SHA256, as a receiver can recompute with node:crypto alone', () => {
    const header = signatureHeader(SECRET, BODY, NOW);
    const expected = createHmac('sha256', SECRET).update(`${T}.${BODY}`).digest('hex');
    expect(header).toBe(`t=${T},v1=${expected}`);
    expect(signatureOf(SECRET, T, Buffer.from(BODY))).toBe(expected);
  });

  it('verifies its own signature, from a string or the raw bytes', () => {
    const header = signatureHeader(SECRET, BODY, NOW);
    expect(verifySignature(SECRET, header, BODY, 300, NOW)).toBe(true);
    expect(verifySignature(SECRET, header, Buffer.from(BODY), 300, NOW)).toBe(true);
  });

  it('refuses another body, another secret, a tampered timestamp', () => {
    const header = signatureHeader(SECRET, BODY, NOW);
    expect(verifySignature(SECRET, header, BODY.replace('succeeded', 'failed'), 300, NOW)).toBe(false);
    expect(verifySignature('x'.repeat(40), header, BODY, 300, NOW)).toBe(false);
    expect(
      verifySignature(SECRET, header.replace(`t=${T}`, `t=${T + 1}`), BODY, 300, new Date(NOW.getTime() + 1000)),
    ).toBe(false);
  });

  it('refuses a signature older or newer than the tolerance (a replayed request)', () => {
    const header = signatureHeader(SECRET, BODY, NOW);
    expect(verifySignature(SECRET, header, BODY, 300, new Date(NOW.getTime() + 300_000))).toBe(true);
    expect(verifySignature(SECRET, header, BODY, 300, new Date(NOW.getTime() + 301_000))).toBe(false);
    expect(verifySignature(SECRET, header, BODY, 300, new Date(NOW.getTime() - 301_000))).toBe(false);
  });

  it('accepts any one of several v1 signatures (a secret being rotated)', () => {
    const old = signatureOf('o'.repeat(40), T, BODY);
    const header = `t=${T},v1=${old},v1=${signatureOf(SECRET, T, BODY)}`;
    expect(verifySignature(SECRET, header, BODY, 300, NOW)).toBe(true);
    expect(verifySignature('n'.repeat(40), header, BODY, 300, NOW)).toBe(false);
  });

  it.each([
    undefined,
    null,
    '',
    'garbage',
    `t=${T}`,
    `v1=${'0'.repeat(64)}`,
    `t=abc,v1=${'0'.repeat(64)}`,
    `t=${T},v1=xyz`,
    `t=${T},v1=${'0'.repeat(63)}`,
    'x'.repeat(5000),
  ])('refuses the malformed header %p without throwing', (header) => {
    expect(verifySignature(SECRET, header, BODY, 300, NOW)).toBe(false);
  });
});
