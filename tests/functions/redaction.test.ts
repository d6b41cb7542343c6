/**
 * A storage service (or a gateway in front of it) whose error answers quote the request: its URL with
 * a SAS token, its Authorization header. What the app makes of such an error (a health check, a
 * problem+json, a log line) never carries the signature, the key or the credential.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { loadSettings } from '../../shared/config';
import { healthRoutes } from '../../shared/http/health';
import { imageRoutes } from '../../shared/http/images';
import { requestBudget, Storage } from '../../shared/storage/clients';
import { resourceNames } from '../../shared/storage/names';
import { SecretScanner } from '../helpers/secrets';
import { uniqueNamespace } from '../helpers/storage';

const SIG = 'c2VjcmV0LXNpZ25hdHVyZS0wMTIzNDU2Nzg5';
const ACCOUNT_KEY = Buffer.from('a test-only account key, 0123456789abcdef').toString('base64');
const settings = loadSettings({ STORAGE_REQUEST_TIMEOUT_MS: '2000' });

let server: http.Server;
let port: number;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const quoted = `${req.method} ${req.url} authorization: ${req.headers.authorization ?? '(none)'}`;
    res.writeHead(403, { 'content-type': 'application/xml', 'x-ms-error-code': 'AuthenticationFailed' });
    res.end(
      `<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>` +
        `<Message>Server failed to authenticate the request: ${quoted.replace(/&/g, '&amp;')}</Message></Error>`,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const endpoints = () =>
  ['Blob', 'Queue', 'Table'].map((kind) => `${kind}Endpoint=http://127.0.0.1:${port}/acct`).join(';');

const CONNECTIONS = {
  'a SAS token': () =>
    `${endpoints()};SharedAccessSignature=sv=2022-11-02&ss=bqt&srt=sco&sp=rwdlacup&se=2030-01-01T00:00:00Z&sig=${encodeURIComponent(SIG)}`,
  'an account key': () => `DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=${ACCOUNT_KEY};${endpoints()}`,
};

describe.each(Object.keys(CONNECTIONS) as (keyof typeof CONNECTIONS)[])('storage reached with %s', (connection) => {
  it('quotes none of it in the health check, a problem+json or the log', async () => {
    const storage = new Storage(CONNECTIONS[connection](), resourceNames(uniqueNamespace()), requestBudget(settings));
    const logs: string[] = [];
    const context = new InvocationContext({
      functionName: 'test',
      invocationId: 'test-invocation',
      logHandler: (_level, ...args) => logs.push(args.map(String).join(' ')),
    });
    const health = await healthRoutes(() => storage, settings).health(
      new HttpRequest({ method: 'GET', url: 'http://localhost/api/health' }),
      context,
    );
    const image = await imageRoutes(() => storage, settings).getImage(
      new HttpRequest({ method: 'GET', url: 'http://localhost/api/images/a.png', params: { name: 'a.png' } }),
      context,
    );
    expect(health.status).toBe(503);
    // the service's message is still there to read, without the secret
    expect(JSON.stringify(health.jsonBody)).toContain('Server failed to authenticate the request');
    expect(image.status).toBeGreaterThanOrEqual(500);
    const scanner = new SecretScanner([
      { name: 'signature', value: SIG },
      { name: 'account key', value: ACCOUNT_KEY },
    ]);
    scanner.scan('health body', JSON.stringify(health.jsonBody));
    scanner.scan('image body', JSON.stringify(image.jsonBody));
    scanner.scan('log', logs.join('\n'));
    expect(logs.join('\n')).toContain('REDACTED');
    expect(scanner.report()).toEqual([]);
  }, 30000);
});
