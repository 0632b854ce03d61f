/**
 * Builds the Qualys Scanner from config values (the `scanner:` section of onsight.yaml):
 * `{ type: qualys, url, username, passwordFile | passwordEnv | credential, optionProfile, endpoints, ... }`.
 */
import type { Logger } from '../../log.js';
import { QualysClient, type QualysClientDeps } from './client.js';
import { loadPassword, type PasswordSource } from './credentials.js';
import type { QualysClientOptions } from './options.js';
import type { QualysScannerOptions } from './schema.js';
import type { SendGuard } from '../backend.js';

export interface QualysScannerConfig extends PasswordSource, Omit<QualysClientOptions, 'baseUrl' | 'password'> {
  /** platform API base URL, e.g. https://qualysapi.qualys.eu */
  url: string;
}

export function createQualysScanner(config: QualysScannerConfig, log?: Logger, deps: Omit<QualysClientDeps, 'log'> = {}, env: NodeJS.ProcessEnv = process.env): QualysClient {
  const { url, passwordFile, passwordEnv, credential, ...rest } = config;
  const password = loadPassword({ passwordFile, passwordEnv, credential }, env);
  return new QualysClient({ ...rest, baseUrl: url, password }, { ...deps, log });
}

/**
 * The scanner for a validated `scanner:` section, every key of it (endpoints included).
 * `allowTarget`: the policy's scope-and-exclusion test, asked afresh at every launch.
 */
export function qualysScannerFromConfig(sc: QualysScannerOptions, log: Logger, allowTarget: (ip: string) => boolean, env: NodeJS.ProcessEnv = process.env, sendGuard?: SendGuard): QualysClient {
  return createQualysScanner({
    url: sc.url,
    username: sc.username,
    passwordFile: sc.passwordFile,
    passwordEnv: sc.passwordEnv,
    credential: sc.credential,
    optionProfile: sc.optionProfile,
    requestedWith: sc.xRequestedWith,
    // the client's hard cap; the scheduler's batches (maxTargetsPerScan, grown for a backlog) stay within it
    maxTargetsPerScan: sc.maxTargetsPerLaunch,
    addToSubscription: sc.addToSubscription,
    requestTimeoutMs: sc.timeoutS * 1000,
    endpoints: sc.endpoints,
    platformDomains: sc.platformDomains,
    scheduleTimeZoneCode: sc.scheduleTimeZoneCode,
    // defence in depth: the client itself refuses targets the policy would not allow
    allowTarget,
  }, log.child({ stage: 'qualys' }), { sendGuard }, env);
}
