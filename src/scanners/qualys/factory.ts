/**
 * Builds the Qualys Scanner from config values (the `scanner:` section of onsight.yaml):
 * `{ type: qualys, url, username, passwordFile | passwordEnv | credential, optionProfile, maxTargetsPerScan }`.
 */
import type { Logger } from '../../log.js';
import { QualysClient, type QualysClientDeps } from './client.js';
import { loadPassword, type PasswordSource } from './credentials.js';
import type { QualysClientOptions } from './options.js';

export interface QualysScannerConfig extends PasswordSource, Omit<QualysClientOptions, 'baseUrl' | 'password'> {
  /** platform API base URL, e.g. https://qualysapi.qualys.eu */
  url: string;
}

export function createQualysScanner(config: QualysScannerConfig, log?: Logger, deps: Omit<QualysClientDeps, 'log'> = {}, env: NodeJS.ProcessEnv = process.env): QualysClient {
  const { url, passwordFile, passwordEnv, credential, ...rest } = config;
  const password = loadPassword({ passwordFile, passwordEnv, credential }, env);
  return new QualysClient({ ...rest, baseUrl: url, password }, { ...deps, log });
}
