/**
 * The one place that sends queue messages. Text is base64-encoded because the Functions queue
 * trigger expects base64 by default and moves anything else straight to the poison queue.
 */
import type { QueueClient } from '@azure/storage-queue';

export async function enqueue(
  queue: QueueClient,
  message: unknown,
  options: { readonly visibilityTimeout?: number } = {},
): Promise<void> {
  const text = typeof message === 'string' ? message : JSON.stringify(message);
  // visibilityTimeout (s): the message stays hidden that long (a task deferred behind a live claim)
  await queue.sendMessage(Buffer.from(text, 'utf8').toString('base64'), options);
}

/** Decodes what `enqueue` wrote (and what the host would hand a trigger). */
export function decodeMessageText(messageText: string): string {
  return Buffer.from(messageText, 'base64').toString('utf8');
}
