/** What every command gets from the entry point. */
import type { Command } from 'commander';
import type { ApiClient } from './api';
import type { CliIo } from './io';
import type { KeyLevel } from './keys';

export interface CliContext {
  readonly io: CliIo;
  /**
   * The client for the URL in effect (--url, else IMAGE_PIPELINE_URL, else the local default) with the key for
   * `level` (default function; see cli/keys.ts).
   */
  api(command: Command, level?: KeyLevel): ApiClient;
  /** Records the exit code of the command that ran; main returns it. */
  exit(code: number): void;
}
