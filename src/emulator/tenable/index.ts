export { startTenableEmulator, type TenableEmulator, type TenableEmulatorOptions, type TenableFaults, type TenableRequestRecord, type TenableFault } from './server.js';
export { runTenableEmulatorCli } from './cli.js';
export { TenableModel, TEMPLATES, type EmScan, type EmRun, type EmScanner, type EmGroup } from './model.js';
