/**
 * Read-only links to one result blob, valid for a short time, so a client downloads a result straight
 * from storage instead of through the function. With an account key (a connection string) the link is a
 * service SAS signed locally; with an identity it is a user delegation SAS, signed with a key the
 * storage account hands out to that identity (Get User Delegation Key), cached and renewed before it
 * expires: one storage round trip every few hours, none per link.
 * A link is a bearer secret: never log it.
 */
import {
  BlobSASPermissions,
  SASProtocol,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
  type BlobSASSignatureValues,
  type BlobServiceClient,
  type ContainerClient,
  type UserDelegationKey,
} from '@azure/storage-blob';
import type { StorageConnection } from './connection';

/** A link starts this far in the past, for clocks that run behind storage's. */
const CLOCK_SKEW_MS = 5 * 60_000;
/** Storage refuses a user delegation key valid for more than 7 days from now. */
const MAX_KEY_LIFETIME_MS = 7 * 24 * 3600_000 - 60_000;
/**
 * The SAS version links are signed with. Storage accepts any released version; the SDK's newest default
 * (2026-04-06) adds fields to the user delegation string-to-sign that Azurite 3.35 does not yet compute,
 * so its links would be refused there. 2025-11-05 is the newest both verify.
 */
const SAS_VERSION = '2025-11-05';
/** How long a user delegation key is used beyond the longest link it signs, before a new one is fetched. */
const KEY_REUSE_MS = 6 * 3600_000;

export interface ResultLink {
  readonly url: string;
  readonly expiresOn: Date;
}

interface CachedKey {
  readonly key: UserDelegationKey;
  readonly expiresOn: Date;
}

export class ResultLinks {
  private key: CachedKey | undefined;
  private pending: Promise<CachedKey> | undefined;

  constructor(
    private readonly service: BlobServiceClient,
    private readonly container: ContainerClient,
    private readonly connection: StorageConnection,
  ) {}

  /** Whether links can be signed: an identity, or a connection string with an account key (not a SAS one). */
  get canSign(): boolean {
    return this.connection.kind === 'identity' || this.service.credential instanceof StorageSharedKeyCredential;
  }

  /** A read-only link to `blob` in the results container, valid for `ttlSeconds` from `now`. */
  async link(blob: string, ttlSeconds: number, now = new Date()): Promise<ResultLink> {
    const expiresOn = new Date(now.getTime() + ttlSeconds * 1000);
    const values: BlobSASSignatureValues = {
      version: SAS_VERSION,
      containerName: this.container.containerName,
      blobName: blob,
      permissions: BlobSASPermissions.parse('r'),
      startsOn: new Date(now.getTime() - CLOCK_SKEW_MS),
      expiresOn,
      // https only, unless storage itself is served over http (Azurite)
      protocol: this.container.url.startsWith('http:') ? SASProtocol.HttpsAndHttp : SASProtocol.Https,
    };
    const blobUrl = this.container.getBlobClient(blob).url;
    const { credential } = this.service;
    if (this.connection.kind === 'connectionString') {
      if (!(credential instanceof StorageSharedKeyCredential))
        throw new Error(`${this.connection.name} has no account key to sign result links with`);
      return { url: `${blobUrl}?${generateBlobSASQueryParameters(values, credential).toString()}`, expiresOn };
    }
    const { key, expiresOn: keyExpiresOn } = await this.keyFor(expiresOn, now);
    // a link never outlives the key that signed it
    if (keyExpiresOn < expiresOn) values.expiresOn = keyExpiresOn;
    const sas = generateBlobSASQueryParameters(values, key, this.service.accountName).toString();
    return { url: `${blobUrl}?${sas}`, expiresOn: values.expiresOn! };
  }

  /** A key valid until at least `until` (or as long as storage allows); concurrent links share one request. */
  private async keyFor(until: Date, now: Date): Promise<CachedKey> {
    const longest = new Date(now.getTime() + MAX_KEY_LIFETIME_MS - 60_000);
    const usable = (k: CachedKey | undefined): k is CachedKey =>
      k !== undefined && (k.expiresOn >= until || k.expiresOn >= longest);
    if (usable(this.key)) return this.key;
    // a failed request is not kept: the next link asks again
    this.pending ??= this.fetchKey(until, now)
      .then((k) => (this.key = k))
      .finally(() => (this.pending = undefined));
    const key = await this.pending;
    return usable(key) ? key : this.keyFor(until, now); // that request was for a shorter link
  }

  private async fetchKey(until: Date, now: Date): Promise<CachedKey> {
    const startsOn = new Date(now.getTime() - CLOCK_SKEW_MS);
    const expiresOn = new Date(Math.min(until.getTime() + KEY_REUSE_MS, now.getTime() + MAX_KEY_LIFETIME_MS));
    const key = await this.service.getUserDelegationKey(startsOn, expiresOn);
    return { key, expiresOn };
  }
}
