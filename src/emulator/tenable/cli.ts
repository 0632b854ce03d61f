/**
 * `onsight emulate tenable --port N [--host H] [--config FILE]`: runs the Tenable emulator for dry
 * runs and prints where it listens and the API keys it accepts (an emulator's, not a secret).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { Logger } from '../../log.js';
import { startTenableEmulator, type TenableEmulator, type TenableEmulatorOptions } from './server.js';

export async function runTenableEmulatorCli(args: { port: number; host?: string; config?: string }, log: Logger, print: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<TenableEmulator> {
  const fromFile = (args.config ? parseYaml(readFileSync(args.config, 'utf8')) ?? {} : {}) as TenableEmulatorOptions;
  const emu = await startTenableEmulator({ scanners: [{ name: 'scanner-1' }], ...fromFile, port: args.port, host: args.host ?? fromFile.host ?? '127.0.0.1', log });
  print(`Tenable emulator listening on ${emu.url}`);
  print(`  accepts X-ApiKeys: ${emu.apiKeys}`);
  print(`  scanners: ${emu.model.scanners.map((s) => `${s.name} (${s.online ? 'on' : 'off'})`).join(', ')}${emu.model.groups.length ? `; groups: ${emu.model.groups.map((g) => `${g.name} [${g.members.join(', ')}]`).join(', ')}` : ''}`);
  print(`  scanner config: { type: tenable, url: "${emu.url}", apiKeysEnv: ONSIGHT_TENABLE_KEYS, template: "Basic Network Scan" }`);
  log.info({ url: emu.url }, 'tenable emulator started');
  return emu;
}
