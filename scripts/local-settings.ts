/** local.settings.json `Values` into the environment, as `func start` does; variables already set win. */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export function loadLocalSettings(root: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const file = path.join(root, 'local.settings.json');
  if (!existsSync(file)) return [];
  const settings = JSON.parse(readFileSync(file, 'utf8')) as { Values?: Record<string, unknown> };
  const applied: string[] = [];
  for (const [key, value] of Object.entries(settings.Values ?? {})) {
    if (env[key] !== undefined) continue;
    env[key] = String(value);
    applied.push(key);
  }
  return applied;
}
