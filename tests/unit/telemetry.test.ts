/**
 * Telemetry with a Microsoft Entra credential: an Application Insights resource with local authentication
 * disabled (the Azure template's) accepts only batches carrying a bearer token. The exporter speaks HTTPS
 * only, so the client runs in a child process (built dist/) that trusts the fake ingestion's certificate.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ManagedIdentityCredential } from '@azure/identity';
import { loadSettings, SETTINGS } from '../../shared/config';
import { entraCredential } from '../../shared/telemetry';
import { startFakeIngestion, type FakeIngestion } from '../helpers/fake-ingestion';

const TELEMETRY = path.resolve(__dirname, '../../dist/shared/telemetry.js');
const AUTH = SETTINGS.appInsightsAuthentication.env;

/** Sends one metric, with a stand-in credential when asked, and flushes. */
const CHILD = [
  `const { createTelemetry } = require(${JSON.stringify(TELEMETRY)});`,
  'const credential = { getToken: async (scopes) => ({ token: `test-token for ${[].concat(scopes).join(" ")}`, expiresOnTimestamp: Date.now() + 3600e3 }) };',
  "const telemetry = createTelemetry(process.env.CONNECTION, console.error, 'test', process.argv[1] === 'entra' ? credential : undefined);",
  "telemetry.metric('entra_probe', 1);",
  'telemetry.flush().then(() => process.exit(0));',
].join('\n');

let ingestion: FakeIngestion;
beforeAll(async () => {
  ingestion = await startFakeIngestion();
});
afterAll(() => ingestion?.stop());

async function send(mode: 'entra' | 'key'): Promise<string[]> {
  const before = ingestion.authorizations.length;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CONNECTION: ingestion.connectionString,
    NODE_EXTRA_CA_CERTS: ingestion.caFile,
  };
  delete env[AUTH];
  await promisify(execFile)(process.execPath, ['-e', CHILD, mode], { env, timeout: 30_000 });
  return ingestion.authorizations.slice(before);
}

it('with a credential, every batch carries its bearer token for Azure Monitor', async () => {
  const sent = await send('entra');
  expect(sent.length).toBeGreaterThan(0);
  for (const header of sent)
    expect(header).toMatch(/^Bearer test-token for https:\/\/monitor\.azure\.com\/\/?\.default$/);
}, 40_000);

it('without one, batches go with the instrumentation key alone', async () => {
  const sent = await send('key');
  expect(sent.length).toBeGreaterThan(0);
  for (const header of sent) expect(header).toBe('');
}, 40_000);

describe('APPLICATIONINSIGHTS_AUTHENTICATION_STRING', () => {
  it('Authorization=AAD is the managed identity; none is the key alone', () => {
    expect(entraCredential('')).toBeUndefined();
    expect(entraCredential('Authorization=AAD')).toBeInstanceOf(ManagedIdentityCredential);
    expect(entraCredential('Authorization=AAD;ClientId=11111111-2222-3333-4444-555555555555')).toBeInstanceOf(
      ManagedIdentityCredential,
    );
    expect(entraCredential('ClientId=11111111-2222-3333-4444-555555555555;Authorization=aad')).toBeInstanceOf(
      ManagedIdentityCredential,
    );
  });

  it('the settings refuse anything else, saying what they expected', () => {
    expect(() => loadSettings({ [AUTH]: 'Authorization=Key' })).toThrow(/Expected Authorization=AAD/);
    expect(() => loadSettings({ [AUTH]: 'Authorization=AAD;ClientId=not-a-guid!' })).toThrow(
      /Expected Authorization=AAD/,
    );
    expect(loadSettings({ [AUTH]: 'Authorization=AAD' }).appInsightsAuthentication).toBe('Authorization=AAD');
  });
});
