/**
 * The storage connection string from the AzureWebJobsStorage setting. `UseDevelopmentStorage=true`
 * means Azurite on its default local endpoints, exactly as the Functions host reads it.
 */
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
export function azuriteConnectionString(ports: AzuritePorts = DEFAULT_AZURITE_PORTS, host = '127.0.0.1'): string {
  const endpoint = (port: number) => `http://${host}:${port}/${AZURITE_ACCOUNT}`;
  return [
    'DefaultEndpointsProtocol=http',
    `AccountName=${AZURITE_ACCOUNT}`,
    `AccountKey=${AZURITE_KEY}`,
    `BlobEndpoint=${endpoint(ports.blob)}`,
    `QueueEndpoint=${endpoint(ports.queue)}`,
    `TableEndpoint=${endpoint(ports.table)}`,
  ].join(';');
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
