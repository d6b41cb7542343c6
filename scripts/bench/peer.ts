/** Runs ../shared/bench/peer_filters.py (Pillow + OpenCV) and reads its one JSON object. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../paths';
import type { BenchResult } from './filters';

const run = promisify(execFile);

export const DEFAULT_PEER_SCRIPT = path.resolve(PROJECT_ROOT, '..', 'shared', 'bench', 'peer_filters.py');
const INSTALL_HINT = 'install the peer with: apt-get install -y python3-pil python3-opencv';

export interface PeerOptions {
  script: string;
  python: string;
  images: string;
  iterations: number;
}

export async function runPeer(filters: readonly string[], opts: PeerOptions): Promise<BenchResult> {
  if (!existsSync(opts.script)) throw new Error(`peer benchmark not found at ${opts.script} (pass --peer-script PATH)`);
  const args = [
    opts.script,
    '--images',
    opts.images,
    '--iterations',
    String(opts.iterations),
    '--filters',
    filters.join(','),
  ];
  try {
    const { stdout } = await run(opts.python, args, { maxBuffer: 16 * 1024 * 1024 });
    return JSON.parse(stdout) as BenchResult;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    const hint = /No module named|ENOENT/.test(`${stderr} ${String(err)}`) ? `\n${INSTALL_HINT}` : '';
    throw new Error(`peer benchmark failed: ${stderr.trim() || String(err)}${hint}`);
  }
}
