#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm ci` via the prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('onsight: not built yet; run `npm run build` (npm ci does it for you)\n');
  process.exit(1);
}
// `onsight run`: a signal while the CLI loads (most of a second on a busy machine) must not meet
// Node's default action, which ends the process (a `systemctl reload` just after a start): it is
// recorded and handed to the daemon's own handlers (src/cli/main.ts, `run`).
if (process.argv[2] === 'run') {
  const signals = [];
  const handlers = ['SIGHUP', 'SIGTERM', 'SIGINT'].map((sig) => [sig, () => signals.push(sig)]);
  for (const [sig, h] of handlers) process.on(sig, h);
  globalThis.onsightEarlySignals = { signals, release: () => { for (const [sig, h] of handlers) process.off(sig, h); } };
}
await import(main.href);
