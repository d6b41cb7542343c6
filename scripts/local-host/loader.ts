/**
 * Finds and loads the function files the way the Node worker does: from package.json `main`,
 * a file or a glob such as `dist/functions/*.js`, relative to the app root.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { installFunctionsCore, registeredFunctions, type RegisteredFunction } from './functions-core';

export function functionFiles(root: string): string[] {
  const main = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { main?: string }).main;
  if (!main)
    throw new Error(`package.json in ${root} has no "main": expected the function files, e.g. "dist/functions/*.js"`);
  const pattern = path.resolve(root, main);
  const dir = path.dirname(pattern);
  if (!path.basename(pattern).includes('*')) return [pattern];
  if (!existsSync(dir))
    throw new Error(`No folder ${path.relative(root, dir)} for package.json main "${main}": run npm run build first`);
  const matcher = new RegExp(
    `^${path
      .basename(pattern)
      .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')}$`,
  );
  const files = readdirSync(dir)
    .filter((f) => matcher.test(f))
    .sort()
    .map((f) => path.join(dir, f));
  if (files.length === 0) throw new Error(`package.json main "${main}" matches no file: run npm run build first`);
  return files;
}

/** Loads the files with @azure/functions-core installed and returns what they registered. */
export function loadFunctions(files: readonly string[]): readonly RegisteredFunction[] {
  installFunctionsCore();
  // The function files are found at run time, as the Node worker finds them: require is the point.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  for (const file of files) require(file);
  return registeredFunctions();
}
