export { startRapid7Emulator, type Rapid7Emulator, type Rapid7EmulatorOptions, type Rapid7Faults, type Rapid7RequestRecord } from './server.js';
export { runRapid7EmulatorCli } from './cli.js';
export { Rapid7Model, type R7EmScan, type R7EmEngine, type R7EmPool } from './model.js';
