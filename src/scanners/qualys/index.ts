export { QualysClient, titleFor, type HostListQuery, type QualysClientDeps } from './client.js';
export { createQualysScanner, type QualysScannerConfig } from './factory.js';
export { loadPassword, CredentialsError, type PasswordSource } from './credentials.js';
export { QualysAllowance, type AllowanceOptions } from './allowance.js';
export {
  DEFAULT_PATHS, DEFAULT_NOT_IN_SUBSCRIPTION, type QualysApi, type QualysClientOptions, type OptionProfileRef,
  type RetryOptions, type ThrottleOptions,
} from './options.js';
export * from './errors.js';
export { mapState, titleHasIntent, type QualysScan } from './scan-xml.js';
export type { QualysAppliance, QualysHost } from './asset-xml.js';
