/**
 * Application Insights as the app uses it: custom metrics and events, whatever reports them (the
 * metrics timer does, see metrics/report.ts). Without APPLICATIONINSIGHTS_CONNECTION_STRING every
 * call is a silent no-op (applicationinsights 3.x throws on some calls without one).
 */
import type * as Identity from '@azure/identity';
import type { TokenCredential } from '@azure/identity';
import type * as ApplicationInsights from 'applicationinsights';
import type * as OpenTelemetryResources from '@opentelemetry/resources';
import { appSettings } from './config';
import { redactSecrets } from './redact';

export interface Telemetry {
  readonly enabled: boolean;
  metric(name: string, value: number, properties?: Record<string, string>): void;
  event(name: string, properties: Record<string, string>): void;
  flush(): Promise<void>;
}

const NO_TELEMETRY: Telemetry = {
  enabled: false,
  metric: () => undefined,
  event: () => undefined,
  flush: () => Promise.resolve(),
};

/**
 * The Microsoft Entra credential APPLICATIONINSIGHTS_AUTHENTICATION_STRING asks for (the setting the
 * Functions host reads for its own telemetry): `Authorization=AAD` is the managed identity, and
 * `;ClientId=<id>` picks a user-assigned one. Undefined for '' (the instrumentation key alone).
 */
export function entraCredential(authentication = appSettings().appInsightsAuthentication): TokenCredential | undefined {
  const pairs = new Map(
    authentication
      .split(';')
      .filter(Boolean)
      .map((pair) => pair.split('=').map((part) => part.trim()) as [string, string])
      .map(([key, value]) => [key.toLowerCase(), value]),
  );
  if (pairs.get('authorization')?.toUpperCase() !== 'AAD') return undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { ManagedIdentityCredential } = require('@azure/identity') as typeof Identity;
  const clientId = pairs.get('clientid');
  return clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential();
}

/**
 * The telemetry client for a connection string ('' turns telemetry off) and a cloud role name; with a
 * credential, every batch carries its bearer token (ingestion with local authentication disabled).
 */
export function createTelemetry(
  connectionString = appSettings().appInsightsConnectionString,
  log: (line: string) => void = () => undefined,
  serviceName = appSettings().serviceName,
  credential: TokenCredential | undefined = connectionString.trim() ? entraCredential() : undefined,
): Telemetry {
  if (!connectionString.trim()) return NO_TELEMETRY;
  // Loaded only when configured: the SDK pulls in OpenTelemetry, which no-telemetry runs do not need.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { TelemetryClient } = require('applicationinsights') as typeof ApplicationInsights;
  const { defaultResource, resourceFromAttributes } =
    require('@opentelemetry/resources') as typeof OpenTelemetryResources;
  /* eslint-enable @typescript-eslint/no-require-imports */
  // Own providers, not the process-wide ones: no auto-collection of HTTP or console traffic.
  const client = new TelemetryClient(connectionString, { useGlobalProviders: false });
  // The cloud role Application Insights groups by (else "unknown_service:node"); OTEL_SERVICE_NAME sets it.
  client.config.azureMonitorOpenTelemetryOptions = {
    resource: defaultResource().merge(resourceFromAttributes({ 'service.name': serviceName })),
  };
  if (credential) client.config.aadTokenCredential = credential;
  const guard = (what: string, call: () => void) => {
    try {
      call();
    } catch (err) {
      log(`telemetry ${what} failed: ${redactSecrets(err instanceof Error ? err.message : String(err))}`);
    }
  };
  return {
    enabled: true,
    metric: (name, value, properties) => guard('metric', () => client.trackMetric({ name, value, properties })),
    event: (name, properties) => guard('event', () => client.trackEvent({ name, properties })),
    flush: async () => {
      try {
        await client.flush();
      } catch (err) {
        log(`telemetry flush failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
  };
}

let processTelemetry: Telemetry | undefined;
export const appTelemetry = (): Telemetry =>
  (processTelemetry ??= createTelemetry(undefined, (line) => console.warn(line)));
