/**
 * IPv6 ranges that reach an IPv4 address (or a private network) through a translator or tunnel, beyond the
 * well-known NAT64 and 6to4 forms: a callback_url host there is refused as the private IPv4 ranges are.
 * Ranges from the IANA IPv6 Special-Purpose Address Registry (RFC 8215, RFC 4380, RFC 5180).
 */
import { blockedRange, checkCallbackUrl } from '../../shared/callback-url';

describe('blockedRange', () => {
  it.each([
    ['64:ff9b:1::a00:1', /local-use IPv4\/IPv6 translation/], // 10.0.0.1 behind a local-use translator
    ['64:ff9b:1:ffff::1', /local-use IPv4\/IPv6 translation/],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', /Teredo/],
    ['2001::1', /Teredo/],
    ['2001:2::1', /benchmarking/],
  ])('refuses %s', (address, why) => {
    expect(blockedRange(address)).toMatch(why);
  });

  it.each(['2001:4860:4860::8888', '2606:4700:4700::1111', '64:ff9b::808:808', '2001:3::1'])(
    'lets the public address %s through',
    (address) => {
      expect(blockedRange(address)).toBeUndefined();
    },
  );
});

it('a callback_url with such a literal host is refused at submit with the range named', async () => {
  const problem = await checkCallbackUrl('https://[64:ff9b:1::a00:1]/hook', { allowPrivate: false });
  expect(problem).toMatchObject({
    field: 'callback_url',
    received: expect.stringContaining('local-use IPv4/IPv6 translation (64:ff9b:1::/48)'),
  });
  expect(await checkCallbackUrl('https://[64:ff9b:1::a00:1]/hook', { allowPrivate: true })).toBeInstanceOf(URL);
});
