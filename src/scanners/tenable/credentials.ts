/**
 * Tenable API keys: one secret, `accessKey=…; secretKey=…` (the X-ApiKeys header's value, as
 * Tenable shows it), from a file, an environment variable or a systemd credential, through the
 * same loader as the Qualys password. Never logged, never echoed in an error.
 */
import { CredentialsError, loadPassword } from '../qualys/credentials.js';

export interface ApiKeysSource {
  apiKeysFile?: string;
  apiKeysEnv?: string;
  credential?: string;
}

export interface ApiKeys {
  accessKey: string;
  secretKey: string;
}

const KEY = /^[A-Za-z0-9]{16,128}$/;

export function loadApiKeys(src: ApiKeysSource, env: NodeJS.ProcessEnv = process.env): ApiKeys {
  let text: string;
  try {
    text = loadPassword({ passwordFile: src.apiKeysFile, passwordEnv: src.apiKeysEnv, credential: src.credential }, env);
  } catch (err) {
    // the loader speaks of "password" and "passwordFile": say it in this backend's words
    throw new CredentialsError((err as Error).message.replace(/Qualys password/g, 'Tenable API keys').replace(/passwordFile, passwordEnv/g, 'apiKeysFile, apiKeysEnv').replace(/password file/g, 'API keys file'));
  }
  const parts = new Map<string, string>();
  for (const p of text.trim().split(/\s*;\s*/)) {
    const eq = p.indexOf('=');
    if (eq > 0) parts.set(p.slice(0, eq).trim(), p.slice(eq + 1).trim());
  }
  const accessKey = parts.get('accessKey') ?? '';
  const secretKey = parts.get('secretKey') ?? '';
  if (!KEY.test(accessKey) || !KEY.test(secretKey)) {
    throw new CredentialsError('Tenable API keys must read `accessKey=<hex>; secretKey=<hex>` (the X-ApiKeys value); the one given does not (not shown)');
  }
  return { accessKey, secretKey };
}

export function apiKeysHeader(k: ApiKeys): string {
  return `accessKey=${k.accessKey}; secretKey=${k.secretKey}`;
}
