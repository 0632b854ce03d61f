/**
 * Where a worker thread's compiled entry is: `NAME.js` beside the calling module (the built daemon),
 * or, when the caller runs from the TypeScript sources (vitest; node 20 cannot load a .ts worker),
 * the copy `npx tsc` wrote under dist/. Undefined when neither exists.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

export function threadEntry(callerUrl: string, name: string): URL | undefined {
  const beside = new URL(`./${name}.js`, callerUrl);
  if (existsSync(fileURLToPath(beside))) return beside;
  const path = fileURLToPath(beside);
  const i = path.lastIndexOf('/src/');
  if (i < 0) return undefined;
  const built = path.slice(0, i) + '/dist' + path.slice(i);
  return existsSync(built) ? pathToFileURL(built) : undefined;
}
