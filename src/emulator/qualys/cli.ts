/**
 * `onsight emulate qualys --port N [--host H] [--config FILE]`: runs the emulator for dry runs
 * and prints where it listens and which credentials it accepts. The process stays up until the
 * caller closes the returned handle (or the process is stopped).
 */
import type { Logger } from '../../log.js';
import { loadEmulatorConfig, type EmulatorFileOptions } from './config.js';
import { startQualysEmulator, type QualysEmulator } from './server.js';

export interface EmulatorCliArgs {
  port: number;
  host?: string;
  config?: string;
}

export async function runEmulatorCli(args: EmulatorCliArgs, log: Logger, print: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<QualysEmulator> {
  const fromFile: EmulatorFileOptions = args.config ? loadEmulatorConfig(args.config) : {};
  const emu = await startQualysEmulator({ ...fromFile, port: args.port, host: args.host ?? fromFile.host ?? '127.0.0.1', log });
  const c = emu.state.config;
  print(`Qualys emulator listening on ${emu.url}`);
  print(`  accepts basic auth  username: ${emu.username}  password: ${emu.password}  (header X-Requested-With required)`);
  print(`  appliances: ${c.appliances.map((a) => `${a.name} (${a.online ? 'online' : 'offline'}, ${a.capacity} hosts in parallel)`).join(', ')}`);
  print(`  subscription: ${c.subscription.join(', ')}`);
  print(`  scanner config: { type: qualys, url: "${emu.url}", username: ${emu.username}, passwordEnv: ONSIGHT_QUALYS_PASSWORD }`);
  log.info({ url: emu.url, appliances: c.appliances.length, speed: c.speed, seed: c.seed, config: args.config }, 'qualys emulator started');
  return emu;
}
