/**
 * The storage connection as the Functions host reads a connection name (shared/storage/connection.ts):
 * a connection string in the setting wins; else `<name>__accountName` (first, as
 * StorageClientProvider.TryGetServiceUri in azure-functions-host src/WebJobs.Script/StorageProvider/
 * does) or `<name>__<service>ServiceUri`, with a credential from `__credential` / `__clientId`
 * (ClientFactory.CreateCredential in azure-sdk-for-net sdk/extensions/Microsoft.Extensions.Azure).
 */
import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';
import { Storage } from '../../shared/storage/clients';
import {
  azuriteConnectionString,
  resolveStorageConnection,
  serviceUri,
  type IdentityConnection,
} from '../../shared/storage/connection';
import { resourceNames } from '../../shared/storage/names';
import { asStorageOutage } from '../../shared/storage/outage';

const identity = (env: NodeJS.ProcessEnv, name?: string) => {
  const connection = resolveStorageConnection(name, env);
  expect(connection.kind).toBe('identity');
  return connection as IdentityConnection;
};

describe('resolveStorageConnection', () => {
  it('takes a connection string, UseDevelopmentStorage=true as Azurite, over any identity setting', () => {
    expect(resolveStorageConnection(undefined, { AzureWebJobsStorage: 'UseDevelopmentStorage=true' })).toEqual({
      kind: 'connectionString',
      name: 'AzureWebJobsStorage',
      connectionString: azuriteConnectionString(),
    });
    const both = { AzureWebJobsStorage: azuriteConnectionString(), AzureWebJobsStorage__accountName: 'photos' };
    expect(resolveStorageConnection(undefined, both).kind).toBe('connectionString');
  });

  it('builds each service URI from __accountName, which wins over __*ServiceUri', () => {
    const c = identity({
      AzureWebJobsStorage__accountName: 'photos',
      AzureWebJobsStorage__blobServiceUri: 'https://x',
    });
    expect([c.blobServiceUri, c.queueServiceUri, c.tableServiceUri]).toEqual([
      'https://photos.blob.core.windows.net',
      'https://photos.queue.core.windows.net',
      'https://photos.table.core.windows.net',
    ]);
  });

  it('takes each service URI from its own setting (names matched case-insensitively), __serviceUri for blobs', () => {
    const c = identity({
      azurewebjobsstorage__BLOBSERVICEURI: 'https://127.0.0.1:1/devstoreaccount1/',
      AzureWebJobsStorage__queueServiceUri: 'https://127.0.0.1:2/devstoreaccount1',
    });
    expect(c.blobServiceUri).toBe('https://127.0.0.1:1/devstoreaccount1');
    expect(serviceUri(c, 'queue')).toBe('https://127.0.0.1:2/devstoreaccount1');
    expect(() => serviceUri(c, 'table')).toThrow(
      'AzureWebJobsStorage has no table endpoint: expected AzureWebJobsStorage__accountName or AzureWebJobsStorage__tableServiceUri',
    );
    expect(identity({ MyStorage__serviceUri: 'https://a.blob.core.windows.net' }, 'MyStorage').blobServiceUri).toBe(
      'https://a.blob.core.windows.net',
    );
  });

  it('uses ManagedIdentityCredential for credential=managedidentity, else DefaultAzureCredential, one per identity', () => {
    const managed = identity({ S__accountName: 'acct', S__credential: 'managedidentity', S__clientId: 'c-1' }, 'S');
    expect(managed.credential).toBeInstanceOf(ManagedIdentityCredential);
    const again = identity({ T__accountName: 'other', T__credential: 'ManagedIdentity', T__clientId: 'c-1' }, 'T');
    expect(again.credential).toBe(managed.credential); // tokens cached once per identity
    expect(identity({ S__accountName: 'acct' }, 'S').credential).toBeInstanceOf(DefaultAzureCredential);
    expect(identity({ S__accountName: 'acct', S__clientId: 'c-2' }, 'S').credential).toBeInstanceOf(
      DefaultAzureCredential,
    );
  });

  it('says which settings it expected when none is set, or when one is malformed', () => {
    expect(() => resolveStorageConnection(undefined, { AzureWebJobsStorage: '  ' })).toThrow(
      /AzureWebJobsStorage is not set: expected a storage connection string \(or UseDevelopmentStorage=true\) in AzureWebJobsStorage, or an identity-based connection in AzureWebJobsStorage__accountName or AzureWebJobsStorage__blobServiceUri, AzureWebJobsStorage__queueServiceUri and AzureWebJobsStorage__tableServiceUri/,
    );
    expect(() => resolveStorageConnection(undefined, { AzureWebJobsStorage__accountName: 'My_Account' })).toThrow(
      "Expected a storage account name (3 to 24 lowercase letters and digits) for AzureWebJobsStorage__accountName but received 'My_Account'",
    );
    expect(() =>
      resolveStorageConnection(undefined, { AzureWebJobsStorage__queueServiceUri: 'queue.example' }),
    ).toThrow("Expected an absolute http(s) URL for AzureWebJobsStorage__queueServiceUri but received 'queue.example'");
    expect(() =>
      resolveStorageConnection(undefined, {
        AzureWebJobsStorage__accountName: 'acct',
        AzureWebJobsStorage__credential: 'password',
      }),
    ).toThrow(/Expected managedidentity .* but received 'password'/);
  });

  it('gives the Storage clients the service URIs and the token credential', () => {
    const storage = new Storage(identity({ AzureWebJobsStorage__accountName: 'photos' }), resourceNames('n1'));
    expect(storage.images.url).toBe('https://photos.blob.core.windows.net/n1-images');
    expect(storage.queue('light').url).toBe('https://photos.queue.core.windows.net/n1-tasks-light');
    expect(storage.tasks.url).toBe('https://photos.table.core.windows.net');
    expect(storage.results.canSign).toBe(true);
  });
});

describe('a managed identity that gets no token', () => {
  it('is a storage outage (503 with Retry-After on a route), not a bug', async () => {
    // no identity endpoint answers on this port: @azure/identity gives up with its own error
    const env = { IDENTITY_ENDPOINT: 'http://127.0.0.1:9/msi/token', IDENTITY_HEADER: 'h' };
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      const credential = new ManagedIdentityCredential({ clientId: 'no-such-identity' });
      const err = await credential.getToken('https://storage.azure.com/.default').catch((e: unknown) => e);
      const outage = asStorageOutage(err);
      expect(outage).toBeDefined();
      expect(outage!.message).toBe('Storage cannot be reached: the managed identity got no token; try again in 5 s');
    } finally {
      process.env = saved;
    }
  });
});
