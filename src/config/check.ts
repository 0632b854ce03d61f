/**
 * What `onsight config check` and `onsight run` both verify beyond the schema, against this host:
 * parser plug-ins load, every input's format exists, every tailed path can be a regular file, every
 * secret the config names (scanner password or API keys, PostgreSQL password, tokens, the webhook
 * secret) can be read. One function, so that run never accepts what config check refuses, nor the
 * reverse. (A SIGHUP reload calls it too.)
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { loadRegistry, type ParserRegistry } from '../parsers/registry.js';
import { globToRegExp, isGlob } from '../sources/file/input.js';
import type { LoadedConfig } from './load.js';
import type { Config } from './schema.js';
import { inputParserFormat } from '../daemon/inputs.js';
import { ENV_NAME, loadPassword, type PasswordSource } from '../scanners/qualys/credentials.js';
import { loadApiKeys } from '../scanners/tenable/credentials.js';
import { loadTokens } from '../net/webconfig.js';

/** Why a tailed path can never be read as a log file, or undefined when it can (or may appear later). */
export function tailedPathProblem(path: string): string | undefined {
  const dir = isGlob(path) ? globToRegExp(path).base : dirname(path);
  const kind = (p: string) => {
    try {
      const st = statSync(p);
      return st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isFIFO() ? 'FIFO' : st.isSocket() ? 'socket' : 'special file';
    } catch {
      return undefined;
    }
  };
  const d = kind(dir);
  if (d === undefined) return `its directory ${dir} does not exist`;
  if (d !== 'directory') return `${dir} is a ${d}, not a directory`;
  if (isGlob(path)) return undefined;
  const f = kind(path);
  if (f !== undefined && f !== 'file') return `${path} is a ${f}, not a regular file`;
  return undefined;
}

/**
 * Why a lease database's path can never be read, if it cannot: there and not a regular file. Its
 * path is a name, never a glob (`fifo[1].leases` passed as one); one not there yet is waited for.
 */
export function leasePathProblem(path: string): string | undefined {
  const st = existsSync(path) ? statSync(path) : undefined;
  const kind = !st || st.isFile() ? undefined : st.isDirectory() ? 'directory' : st.isFIFO() ? 'FIFO' : st.isSocket() ? 'socket' : 'special file';
  return kind ? `${path} is a ${kind}, not a regular file` : undefined;
}

/** a file's device and inode, or undefined when it is not there (yet) */
function fileId(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** One secret the config names: where (the key of its source), which section holds it, and how the daemon reads it. */
interface SecretUse {
  path: (string | number)[];
  /** the top-level section: a reload compares it with the running one */
  section: 'scanner' | 'state' | 'inputs' | 'http' | 'notify';
  source: PasswordSource;
  /** reads it as the daemon does at start (the same loader, the same words), throwing what the daemon would; the value is dropped */
  read: (env: NodeJS.ProcessEnv) => unknown;
}

/** the key of the source given (loadPassword's order: env, then credential, then file) */
function sourceKey(s: PasswordSource, keys: { file: string; env: string; credential: string }): string {
  return s.passwordEnv !== undefined ? keys.env : s.credential !== undefined ? keys.credential : keys.file;
}

/** Every secret the daemon reads at start, from the sections that read one (found from loadPassword's callers). */
function secretsOf(config: Config): SecretUse[] {
  const out: SecretUse[] = [];
  const sc = config.scanner as Record<string, unknown> & { type: string };
  const str = (k: string) => (typeof sc[k] === 'string' ? (sc[k] as string) : undefined);
  if (sc.type === 'tenable') {
    const src = { apiKeysFile: str('apiKeysFile'), apiKeysEnv: str('apiKeysEnv'), credential: str('credential') };
    const source = { passwordFile: src.apiKeysFile, passwordEnv: src.apiKeysEnv, credential: src.credential };
    out.push({ path: ['scanner', sourceKey(source, { file: 'apiKeysFile', env: 'apiKeysEnv', credential: 'credential' })], section: 'scanner', source, read: (env) => loadApiKeys(src, env) });
  } else if (sc.type !== 'dry-run' && [str('passwordFile'), str('passwordEnv'), str('credential')].some((x) => x !== undefined)) {
    // qualys, rapid7 (and a backend to come with the same keys)
    const source = { passwordFile: str('passwordFile'), passwordEnv: str('passwordEnv'), credential: str('credential') };
    out.push({ path: ['scanner', sourceKey(source, { file: 'passwordFile', env: 'passwordEnv', credential: 'credential' })], section: 'scanner', source, read: (env) => loadPassword(source, env) });
  }
  const state = config.state;
  if (typeof state !== 'string' && [state.passwordFile, state.passwordEnv, state.credential].some((x) => x !== undefined)) {
    const source = { passwordFile: state.passwordFile, passwordEnv: state.passwordEnv, credential: state.credential };
    out.push({
      path: ['state', sourceKey(source, { file: 'passwordFile', env: 'passwordEnv', credential: 'credential' })], section: 'state', source,
      // (in the words of cluster/connection.ts)
      read: (env) => reword(() => loadPassword(source, env), (m) => `PostgreSQL password: ${m.replace(/Qualys password/g, 'PostgreSQL password')}`),
    });
  }
  const tokens = (list: { name: string; file?: string; env?: string; credential?: string }[] | undefined, at: (string | number)[], section: 'inputs' | 'http') => (list ?? []).forEach((t, j) => {
    const source = { passwordFile: t.file, passwordEnv: t.env, credential: t.credential };
    out.push({ path: [...at, j, sourceKey(source, { file: 'file', env: 'env', credential: 'credential' })], section, source, read: (env) => loadTokens([t], env) });
  });
  config.inputs.forEach((inp, i) => {
    if (inp.type === 'http') tokens(inp.tokens, ['inputs', i, 'tokens'], 'inputs');
  });
  if (config.http.enabled) tokens(config.http.tokens, ['http', 'tokens'], 'http');
  const hook = config.notify.webhook;
  if (hook) {
    const source = { passwordFile: hook.secret.file, passwordEnv: hook.secret.env, credential: hook.secret.credential };
    out.push({
      path: ['notify', 'webhook', 'secret', sourceKey(source, { file: 'file', env: 'env', credential: 'credential' })], section: 'notify', source,
      // (in doctor's words for it)
      read: (env) => reword(() => loadPassword(source, env), (m) => `webhook secret: ${m.replace(/password file/g, 'secret file').replace(/ to be a password/, ' to be a secret')}`),
    });
  }
  return out;
}

function reword<T>(f: () => T, words: (message: string) => string): T {
  try {
    return f();
  } catch (err) {
    (err as Error).message = words((err as Error).message);
    throw err;
  }
}

/** the loaders' words for a secret that may be readable in a moment (not there yet, empty, not set, no permission yet) */
const MAY_RESOLVE = /cannot be read \((ENOENT|EACCES|EPERM|ENOTDIR)\)|is empty|is not set or empty/;

export interface EnvironmentCheckOptions {
  /** the environment secrets are read against (default: this process's, as the daemon reads them) */
  env?: NodeJS.ProcessEnv;
  /**
   * `onsight config check`: nothing is started by this process, which an operator may run outside
   * the unit. A systemd credential it cannot see ($CREDENTIALS_DIRECTORY unset) is then said as a
   * warning, not checked, instead of refused (run, and a reload, refuse it: the daemon could not
   * read it).
   */
  checkOnly?: boolean;
  /**
   * A reload (SIGHUP): the config the daemon runs. A secret of a section left as it runs is not
   * read again by the reload (those sections need a restart): one that cannot be read now is said as
   * a warning (a restart would refuse it), not a reason to refuse the reload.
   */
  running?: Config;
}

/**
 * Can each secret the config names be read, as the daemon will read it at start? Problems as
 * issues naming the key of the secret's source and its line; the secret itself is never kept,
 * printed or logged (the loaders' messages name the source only). A file that is no regular file
 * and may block a reader (a FIFO, a device) is not read: said as a warning.
 */
function checkSecrets(loaded: LoadedConfig, opts: EnvironmentCheckOptions, issues: ConfigIssue[]): void {
  const { config, locate } = loaded;
  const env = opts.env ?? process.env;
  const text = (path: (string | number)[]) => path.reduce<string>((t, p) => (typeof p === 'number' ? `${t}[${p}]` : t ? `${t}.${p}` : p), '');
  for (const s of secretsOf(config)) {
    const at = { path: text(s.path), line: locate(s.path) };
    const asRunning = opts.running !== undefined && JSON.stringify(opts.running[s.section]) === JSON.stringify(config[s.section]);
    const refuse = (message: string) => {
      if (asRunning) loaded.warnings.push({ ...at, message: `${message} (as the daemon runs it: it keeps what it read at its start; a restart would refuse it)` });
      else issues.push({ ...at, message, ...(MAY_RESOLVE.test(message) ? { mayResolve: true } : {}) });
    };
    // a variable the unit sets (Environment=, EnvironmentFile=, a container's env) is not in the
    // shell of an operator running config check: said, not refused (review: deploy gates failed)
    const name = s.source.passwordEnv;
    if (name !== undefined && opts.checkOnly && ENV_NAME.test(name) && !env[name]) {
      loaded.warnings.push({ ...at, message: `environment variable ${name} not checked: it is not set here (config check outside the unit); run needs it set (Environment= or EnvironmentFile= in the unit)` });
      continue;
    }
    // the file the loader will read (a credential: in $CREDENTIALS_DIRECTORY); env variables read no file
    let file: string | undefined;
    if (s.source.passwordEnv === undefined && s.source.credential !== undefined) {
      const dir = env.CREDENTIALS_DIRECTORY;
      if (!dir && opts.checkOnly) {
        loaded.warnings.push({ ...at, message: `systemd credential ${s.source.credential} not checked: $CREDENTIALS_DIRECTORY is not set (config check outside the unit); run in the unit needs LoadCredential=${s.source.credential}:FILE (run systemd-run -p LoadCredential=… onsight config check to check it)` });
        continue;
      }
      // (an unset directory, a name it refuses: the loader says so)
      if (dir && /^[A-Za-z0-9_.@-]+$/.test(s.source.credential)) file = join(dir, s.source.credential);
    } else if (s.source.passwordEnv === undefined) file = s.source.passwordFile;
    if (file !== undefined) {
      // (stat never opens: a FIFO is not waited on here; the loader's read would wait for a writer)
      let st: ReturnType<typeof statSync> | undefined;
      try {
        st = statSync(file);
      } catch {
        st = undefined; // (not there, not searchable: the loader says so in its words)
      }
      if (st && (st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice())) {
        const kind = st.isFIFO() ? 'a named pipe (FIFO)' : 'a device';
        loaded.warnings.push({ ...at, message: `${file} is ${kind}, not a regular file: not read by this check (a read would wait for a writer); run reads it at its start and waits as long as it takes` });
        continue;
      }
    }
    try {
      s.read(env);
    } catch (err) {
      refuse((err as Error).message);
    }
  }
}

/**
 * Throws a ConfigError listing every problem (with lines); returns the parser registry it loaded.
 * Warnings (a secret not checked) are added to `loaded.warnings`, which every caller says after it.
 */
export async function checkConfigEnvironment(loaded: LoadedConfig, opts: EnvironmentCheckOptions = {}): Promise<ParserRegistry> {
  const { config, locate, origin } = loaded;
  const issues: ConfigIssue[] = [];
  let registry: ParserRegistry | undefined;
  try {
    registry = await loadRegistry(config.parsers.directory);
  } catch (err) {
    issues.push({ path: 'parsers.directory', line: locate(['parsers', 'directory']), message: (err as Error).message });
  }
  // one file under two names (a symlink, a hard link): each of its lines would be applied twice
  const seen = new Map<string, { i: number; path: string }>();
  config.inputs.forEach((inp, i) => {
    const format = inputParserFormat(inp); // lease databases decode their own
    if (registry && format !== undefined && format !== 'auto' && !registry.get(format)) {
      issues.push({ path: `inputs[${i}].format`, line: locate(['inputs', i, 'format']), message: `unknown format "${format}" (known: auto, ${registry.ids().join(', ')})` });
    }
    if (inp.type === 'file') {
      const problem = tailedPathProblem(inp.path);
      if (problem) issues.push({ path: `inputs[${i}].path`, line: locate(['inputs', i, 'path']), message: `cannot tail ${inp.path}: ${problem}` });
      const id = isGlob(inp.path) ? undefined : fileId(inp.path);
      const other = id === undefined ? undefined : seen.get(id);
      if (other && other.path !== inp.path) issues.push({ path: `inputs[${i}].path`, line: locate(['inputs', i, 'path']), message: `${inp.path} is the same file as ${other.path} (inputs[${other.i}]): each of its lines would be applied twice` });
      else if (id !== undefined) seen.set(id, { i, path: inp.path });
      // (one not there yet is fine: logrotate's createolddir makes it at the first rotation)
      const olddir = inp.rotatedDir !== undefined && !isGlob(inp.path) ? resolve(dirname(inp.path), inp.rotatedDir) : undefined;
      if (olddir !== undefined && existsSync(olddir) && !statSync(olddir).isDirectory()) {
        issues.push({ path: `inputs[${i}].rotatedDir`, line: locate(['inputs', i, 'rotatedDir']), message: `${olddir} is not a folder (rotatedDir names the folder logrotate's olddir moves ${inp.path}'s rotations to)` });
      }
    }
    if (inp.type === 'lease') {
      // (a FIFO there passed the check, then hung the start: the input refuses it now, but says so only in
      // its log. A lease database not there yet, its server not installed, is waited for)
      const problem = leasePathProblem(inp.path);
      if (problem) issues.push({ path: `inputs[${i}].path`, line: locate(['inputs', i, 'path']), message: `cannot read the lease database ${inp.path}: ${problem}` });
    }
  });
  checkSecrets(loaded, opts, issues);
  if (issues.length || !registry) throw new ConfigError(issues, origin);
  return registry;
}
