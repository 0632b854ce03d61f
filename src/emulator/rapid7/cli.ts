/**
 * `onsight emulate rapid7 --port N [--host H] [--config FILE]`: runs the InsightVM console emulator
 * for dry runs and prints where it listens and the credentials it accepts (an emulator's, not a secret).
 * With `tls: { certFile, keyFile }` in the options file it serves HTTPS.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { Logger } from '../../log.js';
import { startRapid7Emulator, type Rapid7Emulator, type Rapid7EmulatorOptions } from './server.js';

export async function runRapid7EmulatorCli(args: { port: number; host?: string; config?: string }, log: Logger, print: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<Rapid7Emulator> {
  const file = (args.config ? parseYaml(readFileSync(args.config, 'utf8')) ?? {} : {}) as Rapid7EmulatorOptions & { tls?: { certFile?: string; keyFile?: string } };
  const tls = file.tls?.certFile && file.tls.keyFile ? { cert: readFileSync(file.tls.certFile, 'utf8'), key: readFileSync(file.tls.keyFile, 'utf8') } : undefined;
  const emu = await startRapid7Emulator({ ...file, tls, port: args.port, host: args.host ?? file.host ?? '127.0.0.1', log });
  print(`Rapid7 InsightVM emulator listening on ${emu.url}`);
  print(`  accepts basic auth  username: ${emu.username}  password: ${emu.password}`);
  print(`  engines: ${emu.model.engines.map((e) => e.name).join(', ')}; sites: ${emu.model.sites.map((s) => `${s.id} (${s.name})`).join(', ')}`);
  print(`  scanner config: { type: rapid7, url: "${emu.url}", username: ${emu.username}, passwordEnv: ONSIGHT_RAPID7_PASSWORD, siteId: ${emu.model.sites[0]?.id ?? 1} }`);
  log.info({ url: emu.url }, 'rapid7 emulator started');
  return emu;
}
