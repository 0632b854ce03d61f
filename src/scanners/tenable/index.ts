export { TenableClient, MASTER_PREFIX, type TenableClientOptions } from './client.js';
export { tenableBackend } from './backend.js';
export { tenableScannerSchema, type TenableScannerOptions } from './schema.js';
export { loadApiKeys, apiKeysHeader, type ApiKeys, type ApiKeysSource } from './credentials.js';
export { ScannerHttpError as TenableError } from '../json-transport.js';
export { tenableFailureOutcome } from './outcome.js';
export { mapStatus } from './status.js';
