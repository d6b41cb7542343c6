/**
 * The local host's model of what Kestrel does before routing. Cases follow the real sources:
 * dotnet/aspnetcore src/Shared/UrlDecoder/UrlDecoder.cs (DecodeInPlace: what cannot be decoded stays
 * literal, %2F stays encoded, %00 is refused) and
 * src/Servers/Kestrel/Core/src/Internal/Infrastructure/HttpUtilities.cs (IsHostHeaderValid).
 */
import {
  BadRequestTarget,
  decodePath,
  isHostHeaderValid,
  removeDotSegments,
} from '../../../scripts/local-host/kestrel';

describe('decodePath (UrlDecoder.DecodeInPlace, then dot segments removed)', () => {
  it.each([
    ['/api/images/a%20b.jpg', '/api/images/a b.jpg'],
    ['/api/images/caf%C3%A9', '/api/images/café'],
    ['/api/images/%F0%9F%98%80', '/api/images/😀'],
    ['/api/images/%zz', '/api/images/%zz'],
    ['/api/images/%', '/api/images/%'],
    ['/api/images/%4', '/api/images/%4'],
    ['/api/images/%E0%A4%A', '/api/images/%E0%A4%A'],
    ['/api/images/%C0%AF', '/api/images/%C0%AF'],
    ['/api/images/%C0%AE%C0%AE', '/api/images/%C0%AE%C0%AE'],
    ['/api/images/%ED%A0%80', '/api/images/%ED%A0%80'],
    ['/api/images/%F4%90%80%80', '/api/images/%F4%90%80%80'],
    ['/api/images/%FF', '/api/images/%FF'],
    ['/api/images/%80', '/api/images/%80'],
    ['/api/images/a%2Fb', '/api/images/a%2Fb'],
    ['/api/images/a%2fb', '/api/images/a%2fb'],
    ['/api/images/%41%zz%42', '/api/images/A%zzB'],
  ])('%s → %s', (raw, decoded) => {
    expect(decodePath(raw)).toBe(decoded);
  });

  it('refuses %00 as Kestrel does (400, invalid request target)', () => {
    expect(() => decodePath('/api/images/%00')).toThrow(BadRequestTarget);
  });

  it('removes dot segments after decoding', () => {
    expect(decodePath('/api/images/../../etc/passwd')).toBe('/etc/passwd');
    expect(decodePath('/api/images/%2e%2e/health')).toBe('/api/health');
    expect(removeDotSegments('/a/./b/../c/')).toBe('/a/c/');
    expect(removeDotSegments('/a/..')).toBe('/');
    expect(removeDotSegments('/../../x')).toBe('/x');
  });
});

describe('isHostHeaderValid (HttpUtilities.IsHostHeaderValid)', () => {
  it.each(['', 'localhost', 'localhost:7071', 'example.com', '127.0.0.1:80', '[::1]', '[::1]:7071', 'a-b_c~d'])(
    'accepts %j',
    (host) => expect(isHostHeaderValid(host)).toBe(true),
  );
  it.each(['a b', '[::1', '[::1]x', '[]', ':80', 'localhost:http', 'evil.com/x', 'a@b', 'a\tb', '[zz::1]'])(
    'refuses %j',
    (host) => expect(isHostHeaderValid(host)).toBe(false),
  );
});
