/**
 * One POST of a completion event to its callback URL: signed (X-Signature), with the event's id, connected
 * only to addresses the SSRF check passed (the same resolution is checked and used), redirects not followed
 * (a 3xx is a failed attempt: following it would reach a host nobody checked), cut off after the timeout.
 * The answer's body is read up to a few hundred bytes, for the registration's last_error.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { vetHost, vettedLookup, type CallbackPolicy } from '../callback-url';
import { signatureHeader } from '../signature';

export interface DeliveryRequest {
  readonly url: string;
  readonly body: string;
  readonly eventId: string;
  readonly eventType: string;
  readonly attempt: number;
  readonly secret: string;
  readonly timeoutMs: number;
  readonly policy: CallbackPolicy;
}

/** What an attempt came to: `status` is the receiver's HTTP status, null when none came (network, timeout, refused). */
export interface DeliveryOutcome {
  readonly ok: boolean;
  readonly status: number | null;
  readonly error: string | null;
}

const KEPT_ANSWER_BYTES = 300;

export async function deliverEvent(req: DeliveryRequest, now = new Date()): Promise<DeliveryOutcome> {
  const url = new URL(req.url);
  const literal = url.hostname.replace(/^\[(.*)\]$/, '$1');
  // a literal IP is connected to without a lookup: it is checked here
  if (net.isIP(literal)) {
    const vetted = await vetHost(url, req.policy);
    if ('refused' in vetted) return { ok: false, status: null, error: `callback refused: ${vetted.refused}` };
  }
  const headers = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(req.body)),
    'user-agent': 'image-pipeline-callbacks/1',
    'x-event-id': req.eventId,
    'x-event-type': req.eventType,
    'x-delivery-attempt': String(req.attempt),
    'x-signature': signatureHeader(req.secret, req.body, now),
  };
  const send = url.protocol === 'https:' ? https.request : http.request;
  return new Promise<DeliveryOutcome>((resolve) => {
    const signal = AbortSignal.timeout(req.timeoutMs);
    const request = send(
      url,
      { method: 'POST', headers, signal, lookup: vettedLookup(req.policy), agent: false },
      (response) => {
        const status = response.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let kept = 0;
        response.on('data', (chunk: Buffer) => {
          if (kept < KEPT_ANSWER_BYTES) chunks.push(chunk.subarray(0, KEPT_ANSWER_BYTES - kept));
          kept += chunk.length;
        });
        const settle = () => {
          const ok = status >= 200 && status < 300;
          const answer = Buffer.concat(chunks).toString('utf8').replace(/\s+/g, ' ').trim();
          resolve({ ok, status, error: ok ? null : `HTTP ${status}${answer ? `: ${answer}` : ''}` });
        };
        response.on('end', settle);
        // the status is what counts: an answer cut off (or timed out) after it still tells success from failure
        response.on('error', settle);
        response.on('close', settle);
      },
    );
    request.on('error', (err: NodeJS.ErrnoException) => {
      const timedOut = signal.aborted;
      resolve({
        ok: false,
        status: null,
        error: timedOut ? `no answer within ${req.timeoutMs} ms (CALLBACK_TIMEOUT_MS)` : err.message,
      });
    });
    request.end(req.body);
  });
}
