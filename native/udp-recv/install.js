/**
 * Builds the native UDP receiver at install (`npm ci` runs this as the package's `install` script).
 * It never fails the install: without a compiler, headers or Linux, onsight receives UDP with
 * node's dgram instead. The reason is left in build-failed.txt for the daemon's startup log line.
 * ONSIGHT_NATIVE_UDP=skip skips the build.
 */
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
const failedFile = fileURLToPath(new URL('build-failed.txt', import.meta.url));

function giveUp(reason) {
  writeFileSync(failedFile, `${reason}\n`);
  console.warn(`onsight: the native UDP receiver was not built (${reason}); UDP inputs will use node's dgram`);
  process.exit(0);
}

try {
  rmSync(failedFile, { force: true });
  if (process.env.ONSIGHT_NATIVE_UDP === 'skip') giveUp('ONSIGHT_NATIVE_UDP=skip');
  if (process.platform !== 'linux') giveUp(`recvmmsg receiver is Linux only (platform ${process.platform})`);
  // npm hands its own node-gyp to install scripts; otherwise one on the PATH
  const gyp = process.env.npm_config_node_gyp;
  const r = gyp
    ? spawnSync(process.execPath, [gyp, 'rebuild'], { cwd: dir, encoding: 'utf8' })
    : spawnSync('node-gyp', ['rebuild'], { cwd: dir, encoding: 'utf8' });
  if (r.error) giveUp(`node-gyp: ${r.error.message}`);
  if (r.status !== 0) {
    const out = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim());
    // the compiler's first error, else node-gyp's own
    const why = out.find((l) => /\berror\b:/.test(l)) ?? out.find((l) => /^gyp ERR! stack Error/.test(l)) ?? out.filter(Boolean).pop() ?? '';
    giveUp(`node-gyp rebuild exited ${r.status}: ${why.slice(0, 300)}`);
  }
  console.log('onsight: built the native UDP receiver (native/udp-recv)');
} catch (err) {
  giveUp(err.message);
}
