/** The SSRF guard of completion callbacks: every refused range, the URL's shape, and DNS answers checked whole. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  blockedRange,
  callbackUrlShape,
  checkCallbackUrl,
  MAX_CALLBACK_URL_CHARS,
  vettedLookup,
  type Resolver,
} from '../../shared/callback-url';

const PUBLIC = { allowPrivate: false };
const resolverOf =
  (answers: Record<string, string[]>): Resolver =>
  async (host) => {
    const list = answers[host];
    if (!list) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

describe('blockedRange', () => {
  it.each([
    ['0.0.0.0', /this network/],
    ['0.1.2.3', /this network/],
    ['10.0.0.1', /private \(10/],
    ['10.255.255.255', /private \(10/],
    ['100.64.0.1', /carrier-grade NAT/],
    ['100.127.255.254', /carrier-grade NAT/],
    ['127.0.0.1', /loopback/],
    ['127.255.0.9', /loopback/],
    ['169.254.169.254', /link-local, cloud metadata/],
    ['169.254.0.1', /link-local/],
    ['172.16.0.1', /private \(172\.16/],
    ['172.31.255.255', /private \(172\.16/],
    ['192.168.1.1', /private \(192\.168/],
    ['192.0.0.8', /IETF/],
    ['198.18.0.1', /benchmarking/],
    ['224.0.0.1', /multicast/],
    ['255.255.255.255', /reserved and broadcast/],
    ['::', /unspecified/],
    ['::1', /loopback \(::1\)/],
    ['fc00::1', /unique local/],
    ['fd12:3456::1', /unique local/],
    ['fe80::1', /link-local \(fe80/],
    ['fe80::1%eth0', /link-local \(fe80/],
    ['febf:ffff::1', /link-local \(fe80/],
    ['ff02::1', /multicast/],
    ['::ffff:127.0.0.1', /loopback .*as IPv6/],
    ['::ffff:7f00:1', /loopback .*as IPv6/],
    ['::ffff:169.254.169.254', /link-local.*as IPv6/],
    ['::ffff:10.1.2.3', /private.*as IPv6/],
    ['::ffff:192.168.0.1', /private.*as IPv6/],
    ['::127.0.0.1', /loopback .*as IPv6/],
    ['64:ff9b::a9fe:a9fe', /link-local.*as IPv6/],
    ['2002:7f00:0001::1', /loopback .*as IPv6/],
  ])('refuses %s', (address, why) => {
    expect(blockedRange(address)).toMatch(why);
  });

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '100.63.255.255',
    '100.128.0.1',
    '172.15.255.255',
    '172.32.0.1',
    '192.169.0.1',
    '169.253.255.255',
    '11.0.0.1',
    '2606:4700:4700::1111',
    '2a00:1450:4001:80b::200e',
    '::ffff:8.8.8.8',
    'fbff::1',
  ])('accepts the public address %s', (address) => {
    expect(blockedRange(address)).toBeUndefined();
  });

  it('calls anything else no IP address', () => {
    expect(blockedRange('example.com')).toBe('not an IP address');
  });
});

describe('callbackUrlShape', () => {
  it('takes an absolute https URL', () => {
    expect(callbackUrlShape('https://hooks.example.com/done?x=1', false)).toBeInstanceOf(URL);
  });

  it.each([
    [undefined, /received nothing/],
    [42, /received 42 of type number/],
    ['', /received '' of type string/],
    ['not a url', /absolute https URL/],
    ['/relative/path', /absolute https URL/],
    ['http://hooks.example.com/', /an https URL \(http only with CALLBACK_ALLOW_PRIVATE=true\)/],
    ['ftp://hooks.example.com/', /https URL/],
    ['file:///etc/passwd', /https URL/],
    ['https://user:pass@hooks.example.com/', /without user name or password.*credentials for hooks\.example\.com/],
    ['https://token@hooks.example.com/', /without user name or password/],
    [`https://hooks.example.com/${'a'.repeat(MAX_CALLBACK_URL_CHARS)}`, /received a string of 2074 characters/],
  ])('refuses %p, saying what it expected', (raw, message) => {
    const problem = callbackUrlShape(raw, false);
    expect(problem).not.toBeInstanceOf(URL);
    expect(problem).toMatchObject({ field: 'callback_url', message: expect.stringMatching(message) });
  });

  it('takes http only with CALLBACK_ALLOW_PRIVATE', () => {
    expect(callbackUrlShape('http://localhost:8080/hook', true)).toBeInstanceOf(URL);
  });

  it('never echoes the credentials it refuses', () => {
    const problem = callbackUrlShape('https://alice:s3cret@hooks.example.com/', false);
    expect(JSON.stringify(problem)).not.toContain('s3cret');
  });
});

describe('checkCallbackUrl (with DNS)', () => {
  const resolve = resolverOf({
    'hooks.example.com': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
    'rebind.example.com': ['93.184.216.34', '169.254.169.254'],
    'inside.example.com': ['10.0.0.7'],
    'mapped.example.com': ['::ffff:127.0.0.1'],
    localhost: ['127.0.0.1', '::1'],
  });

  it('accepts a host whose every address is public', async () => {
    const url = await checkCallbackUrl('https://hooks.example.com/done', { ...PUBLIC, resolve });
    expect(url).toBeInstanceOf(URL);
  });

  it.each([
    ['https://rebind.example.com/', /resolves to 169\.254\.169\.254, link-local/],
    ['https://inside.example.com/', /resolves to 10\.0\.0\.7, private/],
    ['https://mapped.example.com/', /resolves to ::ffff:127\.0\.0\.1, loopback/],
    ['https://localhost:8443/', /resolves to 127\.0\.0\.1, loopback/],
    ['https://169.254.169.254/latest/meta-data/', /169\.254\.169\.254, link-local/],
    ['https://[::1]/', /::1, loopback/],
    ['https://[::ffff:a9fe:a9fe]/', /link-local.*as IPv6/],
    ['https://0x7f000001/', /127\.0\.0\.1, loopback/],
    ['https://2130706433/', /127\.0\.0\.1, loopback/],
    ['https://nowhere.example.com/', /does not resolve \(ENOTFOUND\)/],
  ])('refuses %s (any address private is enough)', async (raw, received) => {
    const problem = await checkCallbackUrl(raw, { ...PUBLIC, resolve });
    expect(problem).toMatchObject({
      field: 'callback_url',
      expected: expect.stringMatching(/public addresses only.*CALLBACK_ALLOW_PRIVATE=true/),
      received: expect.stringMatching(received),
    });
  });

  it('lets private addresses through with CALLBACK_ALLOW_PRIVATE', async () => {
    const url = await checkCallbackUrl('http://localhost:8080/hook', { allowPrivate: true, resolve });
    expect(url).toBeInstanceOf(URL);
  });
});

describe('vettedLookup', () => {
  const lookup = (policy: Parameters<typeof vettedLookup>[0], host: string, all: boolean) =>
    new Promise<{ err: NodeJS.ErrnoException | null; address: unknown; family?: number }>((resolve) =>
      vettedLookup(policy)(host, { all }, (err, address, family) => resolve({ err, address, family })),
    );

  it('hands the connection the checked addresses, one or all as asked', async () => {
    const resolve = resolverOf({ 'hooks.example.com': ['93.184.216.34', '2606:2800:220:1::1'] });
    expect(await lookup({ ...PUBLIC, resolve }, 'hooks.example.com', false)).toEqual({
      err: null,
      address: '93.184.216.34',
      family: 4,
    });
    expect((await lookup({ ...PUBLIC, resolve }, 'hooks.example.com', true)).address).toEqual([
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1::1', family: 6 },
    ]);
  });

  it('refuses a name that now resolves to a private address (DNS rebinding after submit)', async () => {
    const resolve = resolverOf({ 'hooks.example.com': ['127.0.0.1'] });
    const { err } = await lookup({ ...PUBLIC, resolve }, 'hooks.example.com', true);
    expect(err).toMatchObject({ code: 'ECALLBACKREFUSED', message: expect.stringMatching(/127\.0\.0\.1, loopback/) });
  });

  it('is what a real request connects through: no socket is opened to a refused address', async () => {
    let connections = 0;
    const server = http.createServer((_req, res) => res.end('ok'));
    server.on('connection', () => (connections += 1));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      const resolve = resolverOf({ 'hooks.example.com': ['127.0.0.1'] });
      const err = await new Promise<Error>((done) => {
        const req = http.request(`http://hooks.example.com:${port}/`, {
          lookup: vettedLookup({ ...PUBLIC, resolve }),
          agent: false,
        });
        req.on('error', done);
        req.end();
      });
      expect(err.message).toMatch(/callback refused/);
      expect(connections).toBe(0);
      // the same server is reached when private addresses are allowed: the lookup, not the server, refused
      const status = await new Promise<number>((done, fail) => {
        const req = http.request(`http://hooks.example.com:${port}/`, {
          lookup: vettedLookup({ allowPrivate: true, resolve }),
          agent: false,
        });
        req.on('response', (res) => done(res.statusCode ?? 0));
        req.on('error', fail);
        req.end();
      });
      expect(status).toBe(200);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
