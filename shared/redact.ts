/**
 * Secrets out of text that leaves the app: logs, problem details and health checks quote messages
 * from the storage SDKs, and a service (or a proxy in front of it) may quote the request's URL or
 * headers there. What is masked: a SAS signature or function key in a URL (`sig=`, `code=`), a key or
 * SAS token in a connection string (`AccountKey=`, `SharedAccessKey=`, `SharedAccessSignature=`,
 * Application Insights' `InstrumentationKey=`) and
 * the credential of an Authorization header (`SharedKey account:…`, `Bearer …`).
 */
const URL_SECRETS = /([?&;])(sig|code)=[^&\s"'<>]*/gi;
const CONNECTION_STRING_SECRETS =
  /(^|[;\s"'])(AccountKey|SharedAccessKey|SharedAccessSignature|InstrumentationKey)=[^;\s"'<>]*/gi;
const AUTHORIZATION = /\b(SharedKey(?:Lite)? [^:\s]+:|Bearer )[A-Za-z0-9+/=._~-]+/g;

export const REDACTED = 'REDACTED';

export function redactSecrets(text: string): string {
  return text
    .replace(CONNECTION_STRING_SECRETS, `$1$2=${REDACTED}`)
    .replace(URL_SECRETS, `$1$2=${REDACTED}`)
    .replace(AUTHORIZATION, `$1${REDACTED}`);
}

/** An error's stack (or message), secrets masked, for a log line. */
export function describeError(err: unknown): string {
  return redactSecrets(err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err));
}
