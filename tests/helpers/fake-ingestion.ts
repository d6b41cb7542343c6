/**
 * A stand-in for Application Insights' ingestion endpoint (`POST /v2.1/track`) on a free local
 * port. The Azure Monitor exporter only speaks HTTPS, so the server uses a throwaway self-signed
 * certificate made with `openssl`; a child process trusts it through NODE_EXTRA_CA_CERTS.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';

export interface Envelope {
  name: string;
  iKey: string;
  tags?: Record<string, string>;
  data: {
    baseType: string;
    baseData: { name?: string; metrics?: { name: string; value: number }[]; properties?: Record<string, string> };
  };
}

export interface FakeIngestion {
  readonly connectionString: string;
  /** PEM file of the server's certificate, for NODE_EXTRA_CA_CERTS. */
  readonly caFile: string;
  readonly envelopes: Envelope[];
  /** The Authorization header of each track request ('' when none). */
  readonly authorizations: string[];
  stop(): Promise<void>;
}

export const FAKE_IKEY = '11111111-2222-3333-4444-555555555555';

export async function startFakeIngestion(): Promise<FakeIngestion> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fake-ingestion-'));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  const envelopes: Envelope[] = [];
  const authorizations: string[] = [];
  const server = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let received = 0;
      if (req.method === 'POST' && req.url?.startsWith('/v2.1/track')) {
        const raw = Buffer.concat(chunks);
        const body = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString();
        const batch = (
          body.trimStart().startsWith('[')
            ? JSON.parse(body)
            : body
                .split('\n')
                .filter(Boolean)
                .map((l) => JSON.parse(l))
        ) as Envelope[];
        envelopes.push(...batch);
        authorizations.push(req.headers.authorization ?? '');
        received = batch.length;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ itemsReceived: received, itemsAccepted: received, errors: [] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return {
    connectionString: `InstrumentationKey=${FAKE_IKEY};IngestionEndpoint=${endpoint};LiveEndpoint=${endpoint}`,
    caFile: cert,
    envelopes,
    authorizations,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Metric name → the capability labels seen with it. */
export function metricsSeen(envelopes: Envelope[]): Map<string, Set<string>> {
  const seen = new Map<string, Set<string>>();
  for (const e of envelopes.filter((x) => x.data.baseType === 'MetricData')) {
    for (const m of e.data.baseData.metrics ?? []) {
      const caps = seen.get(m.name) ?? new Set<string>();
      caps.add(e.data.baseData.properties?.capability ?? '');
      seen.set(m.name, caps);
    }
  }
  return seen;
}
