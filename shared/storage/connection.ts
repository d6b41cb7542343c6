/**
 * How the app reaches storage, read from a connection setting (AzureWebJobsStorage by default) the way
 * the Functions host reads it:
 * - `<name>` set: a connection string (`UseDevelopmentStorage=true` means Azurite on its default
 *   endpoints). It wins over any `<name>__*` setting, as a configuration section with a value is a
 *   connection string to the host (StorageClientProvider.Get and ClientFactory.CreateClient in
 *   azure-functions-host src/WebJobs.Script/StorageProvider/ and azure-sdk-for-net
 *   sdk/extensions/Microsoft.Extensions.Azure/src/Internal/ClientFactory.cs).
 * - else an identity-based connection: each service's URI from `<name>__accountName`
 *   (https://<account>.<blob|queue|table>.core.windows.net, taking precedence as in
 *   StorageClientProvider.TryGetServiceUri) or `<name>__<blob|queue|table>ServiceUri`
 *   (`<name>__serviceUri` too for blobs, the older name the blob extension still reads), and a
 *   token credential from `<name>__credential` / `__clientId` / `__managedIdentityResourceId`
 *   (ClientFactory.CreateCredential: `managedidentity` → ManagedIdentityCredential).
 */
import { DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';

const AZURITE_ACCOUNT = 'devstoreaccount1';
// Azurite's published well-known development key, not a secret.
const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuritePorts {
  readonly blob: number;
  readonly queue: number;
  readonly table: number;
}

export const DEFAULT_AZURITE_PORTS: AzuritePorts = { blob: 10000, queue: 10001, table: 10002 };

/** A full connection string for Azurite on the given host and ports (also what KEDA needs instead of the shorthand). */
export function azuriteConnectionString(
  ports: AzuritePorts = DEFAULT_AZURITE_PORTS,
  host = '127.0.0.1',
  protocol: 'http' | 'https' = 'http',
): string {
  const endpoint = (port: number) => `${protocol}://${host}:${port}/${AZURITE_ACCOUNT}`;
  return [
    `DefaultEndpointsProtocol=${protocol}`,
    `AccountName=${AZURITE_ACCOUNT}`,
    `AccountKey=${AZURITE_KEY}`,
    `BlobEndpoint=${endpoint(ports.blob)}`,
    `QueueEndpoint=${endpoint(ports.queue)}`,
    `TableEndpoint=${endpoint(ports.table)}`,
  ].join(';');
}

/** Azurite's service URIs (what an identity-based connection names in <name>__blobServiceUri etc.). */
export function azuriteServiceUris(ports: AzuritePorts, host = '127.0.0.1', protocol: 'http' | 'https' = 'https') {
  const uri = (port: number) => `${protocol}://${host}:${port}/${AZURITE_ACCOUNT}`;
  return { blob: uri(ports.blob), queue: uri(ports.queue), table: uri(ports.table) };
}

export function resolveConnectionString(value: string | undefined): string {
  const setting = value?.trim();
  if (!setting)
    throw new Error(
      'AzureWebJobsStorage is not set: expected a storage connection string or UseDevelopmentStorage=true',
    );
  if (/^UseDevelopmentStorage=true;?$/i.test(setting)) return azuriteConnectionString();
  return setting;
}

export type StorageService = 'blob' | 'queue' | 'table';

export interface ConnectionStringConnection {
  readonly kind: 'connectionString';
  readonly name: string;
  readonly connectionString: string;
}

export interface IdentityConnection {
  readonly kind: 'identity';
  readonly name: string;
  readonly blobServiceUri?: string;
  readonly queueServiceUri?: string;
  readonly tableServiceUri?: string;
  readonly credential: TokenCredential;
}

export type StorageConnection = ConnectionStringConnection | IdentityConnection;

/** Setting names are matched as the host's configuration does: case-insensitively. */
function reader(env: NodeJS.ProcessEnv) {
  const lower = new Map(Object.entries(env).map(([k, v]) => [k.toLowerCase(), v?.trim()]));
  return (key: string): string | undefined => lower.get(key.toLowerCase()) || undefined;
}

const SERVICES: readonly StorageService[] = ['blob', 'queue', 'table'];

/** The connection named `name`: a connection string, or service URIs with a token credential; else a clear error. */
export function resolveStorageConnection(
  name = 'AzureWebJobsStorage',
  env: NodeJS.ProcessEnv = process.env,
): StorageConnection {
  const get = reader(env);
  const plain = get(name);
  if (plain) return { kind: 'connectionString', name, connectionString: resolveConnectionString(plain) };
  const at = (key: string) => get(`${name}__${key}`);
  const account = at('accountName');
  if (account !== undefined && !/^[a-z0-9]{3,24}$/.test(account))
    throw new Error(
      `Expected a storage account name (3 to 24 lowercase letters and digits) for ${name}__accountName but received '${account}'`,
    );
  const uriOf = (service: StorageService): string | undefined => {
    if (account) return `https://${account}.${service}.core.windows.net`;
    const uri = at(`${service}ServiceUri`) ?? (service === 'blob' ? at('serviceUri') : undefined);
    if (uri !== undefined && !/^https?:\/\/[^\s/]+/i.test(uri))
      throw new Error(`Expected an absolute http(s) URL for ${name}__${service}ServiceUri but received '${uri}'`);
    return uri?.replace(/\/+$/, '');
  };
  const [blobServiceUri, queueServiceUri, tableServiceUri] = SERVICES.map(uriOf);
  if (!blobServiceUri && !queueServiceUri && !tableServiceUri)
    throw new Error(
      `${name} is not set: expected a storage connection string (or UseDevelopmentStorage=true) in ${name}, ` +
        `or an identity-based connection in ${name}__accountName or ${name}__blobServiceUri, ` +
        `${name}__queueServiceUri and ${name}__tableServiceUri (with ${name}__credential=managedidentity and ` +
        `${name}__clientId for a user-assigned identity)`,
    );
  return {
    kind: 'identity',
    name,
    blobServiceUri,
    queueServiceUri,
    tableServiceUri,
    credential: credentialOf(at('credential'), at('clientId'), at('managedIdentityResourceId')),
  };
}

/** The URI of one service of an identity-based connection, or an error naming the settings that give it. */
export function serviceUri(connection: IdentityConnection, service: StorageService): string {
  const uri = connection[`${service}ServiceUri`];
  if (uri) return uri;
  const { name } = connection;
  throw new Error(`${name} has no ${service} endpoint: expected ${name}__accountName or ${name}__${service}ServiceUri`);
}

const credentials = new Map<string, TokenCredential>();

/**
 * One credential per identity, shared by every client of the process so a token is fetched once and
 * refreshed by @azure/identity before it expires, not per client or per request.
 */
function credentialOf(kind: string | undefined, clientId?: string, resourceId?: string): TokenCredential {
  const managed = kind?.toLowerCase() === 'managedidentity';
  if (kind !== undefined && !managed)
    throw new Error(
      `Expected managedidentity (or nothing, for DefaultAzureCredential) for the connection's __credential but received '${kind}'`,
    );
  const key = `${managed}|${clientId ?? ''}|${resourceId ?? ''}`;
  let credential = credentials.get(key);
  if (!credential) {
    if (managed)
      credential =
        resourceId && !clientId
          ? new ManagedIdentityCredential({ resourceId })
          : new ManagedIdentityCredential({ clientId });
    else if (resourceId && !clientId)
      credential = new DefaultAzureCredential({ managedIdentityResourceId: resourceId });
    else credential = new DefaultAzureCredential({ managedIdentityClientId: clientId });
    credentials.set(key, credential);
  }
  return credential;
}
