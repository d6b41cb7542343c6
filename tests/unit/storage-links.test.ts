/**
 * Result links with an identity (shared/storage/links.ts): the user delegation key is fetched once and
 * reused for every link it can sign, renewed before a link would outlive it, and a failed fetch is not
 * kept. No network: the key request is stubbed; signing is local.
 */
import { AnonymousCredential, BlobServiceClient, type UserDelegationKey } from '@azure/storage-blob';
import type { IdentityConnection } from '../../shared/storage/connection';
import { ResultLinks } from '../../shared/storage/links';

const HOUR = 3600_000;

function links() {
  const service = new BlobServiceClient('https://acct.blob.core.windows.net', new AnonymousCredential());
  const requests: { startsOn: Date; expiresOn: Date }[] = [];
  let fail = false;
  service.getUserDelegationKey = (async (startsOn: Date, expiresOn: Date) => {
    requests.push({ startsOn, expiresOn });
    if (fail) throw Object.assign(new Error('denied'), { statusCode: 403 });
    return {
      signedObjectId: 'oid',
      signedTenantId: 'tid',
      signedStartsOn: startsOn,
      signedExpiresOn: expiresOn,
      signedService: 'b',
      signedVersion: '2025-11-05',
      value: Buffer.alloc(32, 7).toString('base64'),
    } as UserDelegationKey;
  }) as unknown as BlobServiceClient['getUserDelegationKey'];
  const connection = { kind: 'identity', name: 'AzureWebJobsStorage' } as IdentityConnection;
  const results = new ResultLinks(service, service.getContainerClient('processed'), connection);
  return { results, requests, failNext: (f: boolean) => (fail = f) };
}

it('fetches one user delegation key for many links, and a new one only when a link would outlive it', async () => {
  const { results, requests } = links();
  const now = new Date('2026-01-01T00:00:00Z');
  const [a, b] = await Promise.all([results.link('a.png', 900, now), results.link('b.png', 900, now)]);
  await results.link('c.png', 900, new Date(now.getTime() + 2 * HOUR));
  expect(requests).toHaveLength(1);
  // the key is valid from 5 minutes before (clock skew) to 6 h past the link's expiry
  expect(requests[0].startsOn.toISOString()).toBe('2025-12-31T23:55:00.000Z');
  expect(requests[0].expiresOn.toISOString()).toBe('2026-01-01T06:15:00.000Z');
  for (const link of [a, b]) {
    const url = new URL(link.url);
    expect(url.searchParams.get('skoid')).toBe('oid');
    expect(url.searchParams.get('sp')).toBe('r');
    expect(url.searchParams.get('spr')).toBe('https');
    expect(url.searchParams.get('se')).toBe('2026-01-01T00:15:00Z');
  }
  expect(new URL(a.url).pathname).toBe('/processed/a.png');
  // a little over 6 h later a 15-minute link would outlive the key: a new one
  await results.link('d.png', 900, new Date(now.getTime() + 6 * HOUR));
  expect(requests).toHaveLength(1);
  await results.link('d.png', 900, new Date(now.getTime() + 6 * HOUR + 1000));
  expect(requests).toHaveLength(2);
});

it('never signs past 7 days, the longest a user delegation key lives', async () => {
  const { results, requests } = links();
  const now = new Date('2026-01-01T00:00:00Z');
  const link = await results.link('a.png', 604_800, now);
  expect(requests[0].expiresOn.getTime() - now.getTime()).toBeLessThanOrEqual(7 * 24 * HOUR);
  expect(link.expiresOn.getTime()).toBeLessThanOrEqual(requests[0].expiresOn.getTime());
});

it('does not keep a failed key request: the next link asks again', async () => {
  const { results, requests, failNext } = links();
  failNext(true);
  await expect(results.link('a.png', 900)).rejects.toThrow('denied');
  failNext(false);
  await results.link('a.png', 900);
  expect(requests).toHaveLength(2);
});
