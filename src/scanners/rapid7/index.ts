export { Rapid7Client, type Rapid7ClientOptions } from './client.js';
export { rapid7Backend } from './backend.js';
export { rapid7ScannerSchema, type Rapid7ScannerOptions } from './schema.js';
export { mapStatus } from './status.js';
