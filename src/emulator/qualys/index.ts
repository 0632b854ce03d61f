export { startQualysEmulator, type QualysEmulator, type EmulatorState, type RequestRecord } from './server.js';
export { runEmulatorCli, type EmulatorCliArgs } from './cli.js';
export {
  loadEmulatorConfig, resolveEmulatorConfig, emulatorFileSchema, type EmulatorConfig, type EmulatorFileOptions,
  type EmulatorOptions, type EmulatedApi, type FaultConfig, type LimitConfig,
} from './config.js';
export type { ApiStats } from './limits.js';
export type { EmScan, EmAppliance, EmHost, QualysScanState } from './model.js';
