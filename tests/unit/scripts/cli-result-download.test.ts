/**
 * The CLI downloads a result through the 302 the result route answers, and the function key stays
 * with the app: fetch keeps custom headers such as x-functions-key on a cross-origin redirect (it
 * drops only Authorization), so the CLI follows the link itself, without the key.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiClient, ApiError } from '../../../scripts/cli/api';

interface Seen {
  path: string;
  key: string | undefined;
}

function listen(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) });
    }),
  );
}

describe('ApiClient.download', () => {
  const seen: Seen[] = [];
  let storage: Awaited<ReturnType<typeof listen>>;
  let app: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    storage = await listen((req, res) => {
      seen.push({ path: req.url!, key: req.headers['x-functions-key'] as string | undefined });
      if (req.url!.includes('sig=expired')) {
        res
          .writeHead(403, { 'content-type': 'application/xml' })
          .end('<Error><Code>AuthenticationFailed</Code></Error>');
        return;
      }
      res.writeHead(200, { 'content-type': 'image/png' }).end('result-bytes');
    });
    app = await listen((req, res) => {
      seen.push({ path: req.url!, key: req.headers['x-functions-key'] as string | undefined });
      const sig = req.url!.includes('old') ? 'expired' : 'secret';
      res.writeHead(302, { location: `${storage.url}/processed/t_0000.png?sp=r&sig=${sig}` }).end();
    });
  });
  afterAll(async () => {
    await app.close();
    await storage.close();
  });

  it('follows the link without the function key', async () => {
    seen.length = 0;
    const data = await new ApiClient(`${app.url}/api`, 'the-function-key').download('/tasks/t_0000/result');
    expect(data.toString()).toBe('result-bytes');
    expect(seen).toEqual([
      { path: '/api/tasks/t_0000/result', key: 'the-function-key' },
      { path: '/processed/t_0000.png?sp=r&sig=secret', key: undefined },
    ]);
  });

  it('reports a refused link by its address without the signature', async () => {
    const err = await new ApiClient(`${app.url}/api`, 'k').download('/tasks/old/result').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(403);
    expect((err as ApiError).url).toBe(`${storage.url}/processed/t_0000.png`);
    expect(String((err as ApiError).message)).not.toContain('sig=');
  });
});
