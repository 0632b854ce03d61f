export { QualysClient, titleFor, type HostListQuery, type QualysClientDeps } from './client.js';
export { createQualysScanner, qualysScannerFromConfig, type QualysScannerConfig } from './factory.js';
export { qualysScannerSchema, type QualysScannerOptions } from './schema.js';
export { loadPassword, CredentialsError, type PasswordSource } from './credentials.js';
export { QualysAllowance, type AllowanceOptions } from './allowance.js';
export {
  DEFAULT_ENDPOINTS, DEFAULT_SCHEDULE_TIME_ZONE_CODE, ENDPOINT_API, PLATFORM_DOMAINS, nextPageRefusal, platformDomainOf, DEFAULT_NOT_IN_SUBSCRIPTION, type QualysApi, type QualysEndpoint, type QualysClientOptions, type OptionProfileRef,
  type RetryOptions, type ThrottleOptions,
} from './options.js';
export * from './errors.js';
export { mapState, titleHasIntent, type QualysScan } from './scan-xml.js';
export { parseScheduleList, type QualysSchedule } from './schedule-xml.js';
export type { QualysAppliance, QualysHost } from './asset-xml.js';
export { qualysFailureOutcome } from './outcome.js';
