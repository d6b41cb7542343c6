/**
 * The one place that sends queue messages. Text is base64-encoded because the Functions queue
 * trigger expects base64 by default and moves anything else straight to the poison queue.
 */
import type { QueueClient } from '@azure/storage-queue';

/**
 * Time-to-live of every message the app sends: -1, never expires (Azure Storage since API version
 * 2017-07-29; Azurite too). Without it the service drops a message 7 days after it was sent, unseen by
 * any function: a task would stay queued and its job never end (a capability with no worker running
 * for a week), a callback would never be sent, and nobody would be told. A message here is always work
 * someone is owed, so it stays until a function takes it; to give up on work, delete the job. Every
 * re-send (a deferred copy, a retry, a requeued dead letter, a callback's next check) goes through here
 * and keeps it. Only the host's own copy to `<queue>-poison` gets the service default (see README).
 */
export const MESSAGE_TIME_TO_LIVE_SECONDS = -1;

export async function enqueue(
  queue: QueueClient,
  message: unknown,
  options: { readonly visibilityTimeout?: number } = {},
): Promise<void> {
  const text = typeof message === 'string' ? message : JSON.stringify(message);
  // visibilityTimeout (s): the message stays hidden that long (a task deferred behind a live claim)
  await queue.sendMessage(Buffer.from(text, 'utf8').toString('base64'), {
    ...options,
    messageTimeToLive: MESSAGE_TIME_TO_LIVE_SECONDS,
  });
}

/** Decodes what `enqueue` wrote (and what the host would hand a trigger). */
export function decodeMessageText(messageText: string): string {
  return Buffer.from(messageText, 'base64').toString('utf8');
}
