/**
 * What `onsight config check` and `onsight run` both verify beyond the schema, against this host:
 * parser plug-ins load, every input's format exists, every tailed path can be a regular file, every
 * secret the config names (scanner password or API keys, PostgreSQL password, tokens, the webhook
 * secret) can be read (one its group or others may read is said), every TLS certificate, key and CA
 * file loads. A source's value that looks like the secret itself is never printed (shownSource).
 * One function, so that run never accepts what config check refuses, nor the reverse. (A SIGHUP
 * reload calls it too.)
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, opendirSync, readFileSync, statSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { loadRegistry, type ParserRegistry } from '../parsers/registry.js';
import { escapeGlob, globToRegExp, isGlob, unescapeGlob } from '../sources/file/input.js';
import type { LoadedConfig } from './load.js';
import type { Config } from './schema.js';
import { inputParserFormat } from '../daemon/inputs.js';
import { ENV_NAME, loadPassword, NOT_SHOWN, shownSource, type PasswordSource } from '../scanners/qualys/credentials.js';
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

/** entries globLiteralHint looks at, at most (a glob over a big tree: the hint is a courtesy) */
const HINT_LOOK = 1000;
/** a segment picomatch may read as syntax */
const GLOB_SYNTAX = /[*?[\]{}()!+@]/;

/**
 * A folder (or file) of a glob that is there under the name written, but whose glob syntax does not
 * match that name (`dhcp(a)` is a group to picomatch, `x[!1]` a negated class), or whose syntax
 * breaks the whole path (`a(b/x/*.log`: each name matches itself, but the group `(` opens takes in
 * the rest): the input would watch nothing there, unsaid. At any depth, below `*` or `**` too: the
 * folders each segment reaches alone are walked (at most HINT_LOOK entries looked at). Says which
 * folder and how to escape it; undefined when nothing is so.
 */
export function globLiteralHint(path: string): string | undefined {
  if (!isGlob(path)) return undefined;
  const raw = path.split('/');
  /** the segments written, and where each is in `raw` (an empty one, `//`, is none) */
  const at = raw.flatMap((seg, k) => (seg === '' ? [] : [k]));
  const segs = at.map((k) => raw[k]);
  /** each segment's own RegExp (what it matches alone) */
  const alone = segs.map((seg) => globToRegExp(seg).re);
  let budget = HINT_LOOK;
  let said: string | undefined;
  /** the files reached, each with the folders reached by their written name (segment index → path) */
  const found: { path: string; named: Map<number, string> }[] = [];
  const under = (dir: string, name: string) => (dir === '' ? name : join(dir, name));
  const entries = (dir: string): { name: string; dir: boolean }[] => {
    const out: { name: string; dir: boolean }[] = [];
    let d: ReturnType<typeof opendirSync> | undefined;
    try {
      d = opendirSync(dir || '.');
      for (let e = d.readSync(); e !== null && budget > 0; e = d.readSync()) {
        budget--;
        // (a symlink is followed, as the file input's watcher does)
        const isDir = e.isDirectory() || (e.isSymbolicLink() && isDirectory(under(dir, e.name)));
        out.push({ name: e.name, dir: isDir });
      }
    } catch {
      // (not there, not searchable: nothing reached)
    } finally {
      d?.closeSync();
    }
    return out;
  };
  const walk = (dir: string, i: number, named: Map<number, string>): void => {
    if (said !== undefined || budget <= 0) return;
    const seg = segs[i];
    const last = i === segs.length - 1;
    if (seg === '**') {
      if (!last) walk(dir, i + 1, named);
      for (const e of entries(dir)) {
        if (e.dir) walk(under(dir, e.name), i, named);
        else if (last) found.push({ path: under(dir, e.name), named });
      }
      return;
    }
    const name = unescapeGlob(seg);
    const literal = under(dir, name);
    budget--;
    if (existsSync(literal)) {
      // (every segment: `dhcp(a)` is no glob to isGlob, yet a group to picomatch)
      if (!alone[i].test(name)) {
        said = `${literal} is there, but "${seg}" is glob syntax that does not match that name: nothing in it would be tailed (write it "${escapeGlob(name)}")`;
      } else if (last) found.push({ path: literal, named });
      else walk(literal, i + 1, new Map(named).set(i, literal));
      return;
    }
    if (!GLOB_SYNTAX.test(seg)) return;
    for (const e of entries(dir)) {
      if (!alone[i].test(e.name)) continue;
      if (!last && e.dir) walk(under(dir, e.name), i + 1, named);
      else if (last && !e.dir) found.push({ path: under(dir, e.name), named });
    }
  };
  walk(path.startsWith('/') ? '/' : '', 0, new Map());
  if (said !== undefined) return said;
  const whole = globToRegExp(path).re;
  if (!found.length || found.some((f) => whole.test(f.path))) return undefined;
  // files each segment matches alone, none the whole glob: the folder written by its name whose escaped
  // spelling makes the glob match them (the first such, from the top)
  for (let j = 0; j < segs.length - 1; j++) {
    if (!GLOB_SYNTAX.test(segs[j])) continue;
    const escaped = escapeGlob(unescapeGlob(segs[j]));
    const fixed = globToRegExp(raw.map((seg, k) => (k === at[j] ? escaped : seg)).join('/')).re;
    const fits = found.filter((f) => f.named.has(j) && fixed.test(f.path));
    if (!fits.length) continue;
    const folder = fits[0].named.get(j)!;
    const n = fits.filter((f) => f.named.get(j) === folder).length;
    return `${folder} is there and holds ${n} file(s) matching "${segs.slice(j + 1).join('/')}", but the glob matches none of them: "${segs[j]}" is glob syntax there (write it "${escaped}")`;
  }
  return undefined;
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
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
  /** a listener's token: read again at a reload (the others only at start) */
  token?: true;
}

/** `inputs[2].tokens[0].file` for ['inputs', 2, 'tokens', 0, 'file'] */
const keyText = (path: (string | number)[]) => path.reduce<string>((t, p) => (typeof p === 'number' ? `${t}[${p}]` : t ? `${t}.${p}` : p), '');

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
    out.push({ path: [...at, j, sourceKey(source, { file: 'file', env: 'env', credential: 'credential' })], section, source, read: (env) => loadTokens([t], env), token: true });
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

/** The file a secret's loader will read, if it reads one (an env variable: none; a credential: in $CREDENTIALS_DIRECTORY, when set and the name is one). */
function secretFile(s: SecretUse, env: NodeJS.ProcessEnv): string | undefined {
  if (s.source.passwordEnv !== undefined) return undefined;
  if (s.source.credential === undefined) return s.source.passwordFile;
  const dir = env.CREDENTIALS_DIRECTORY;
  // (an unset directory, a name it refuses: the loader says so)
  return dir && /^[A-Za-z0-9_.@-]+$/.test(s.source.credential) ? join(dir, s.source.credential) : undefined;
}

/** `a named pipe (FIFO)` or `a device` when a read of `file` may wait for a writer; undefined otherwise (stat never opens: nothing is waited on here) */
export function blockingKind(file: string): string | undefined {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(file);
  } catch {
    return undefined; // (not there, not searchable: the reader says so in its words)
  }
  return st.isFIFO() ? 'a named pipe (FIFO)' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : undefined;
}

/** The warning for `file`, of blockingKind's `kind`, left unread by `reader` (this check, doctor): one wording for every such file. */
export function notReadWarning(file: string, kind: string, reader: 'this check' | 'doctor'): string {
  return `${shownSource(file)} is ${kind}, not a regular file: not read by ${reader} (a read would wait for a writer); run reads it at its start and waits as long as it takes`;
}

/** A secret whose file a read would wait on (a FIFO, a device): the key of its source, its section, the file and what it is. */
export interface BlockingSecret {
  path: string;
  section: SecretUse['section'];
  file: string;
  kind: string;
}

/**
 * The secrets the config names whose files are no regular file and may block a reader: config check
 * and doctor do not read these (the daemon does, at its start, and waits for a writer).
 */
export function blockingSecrets(config: Config, env: NodeJS.ProcessEnv = process.env): BlockingSecret[] {
  return secretsOf(config).flatMap((s) => {
    const file = secretFile(s, env);
    const kind = file === undefined ? undefined : blockingKind(file);
    return file !== undefined && kind !== undefined ? [{ path: keyText(s.path), section: s.section, file, kind }] : [];
  });
}

/** The TLS files the config names (listeners, `scanner.ca`, PostgreSQL's ssl* parameters) that are no regular file and may block a reader (doctor skips what would read them). */
export function blockingTlsFiles(config: Config): BlockingSecret[] {
  return tlsUsesOf(config).flatMap((u) => u.files.flatMap((f) => {
    const kind = blockingKind(f.file);
    return kind === undefined ? [] : [{ path: keyText(f.path), section: u.section, file: f.file, kind }];
  }));
}

/** A secret file its group or others may read: the key naming it, the file and its mode. */
export interface ExposedSecret {
  path: string;
  at: (string | number)[];
  file: string;
  mode: number;
}

/**
 * The secret files the config names (password, API keys, token and webhook secret files; TLS and
 * PostgreSQL private keys) that their group or others may read: whoever reads one can use it.
 * Files named by a path only: a systemd credential (the service's own, 0400) and a variable have no
 * mode to set. Said, not refused (a group the service joins may be meant); stat only, nothing read.
 */
export function exposedSecretFiles(config: Config): ExposedSecret[] {
  const named = [
    ...secretsOf(config).flatMap((s) => (s.source.passwordEnv === undefined && s.source.credential === undefined && s.source.passwordFile !== undefined ? [{ at: s.path, file: s.source.passwordFile }] : [])),
    ...tlsUsesOf(config).flatMap((u) => u.files.filter((f) => f.role === 'key').map((f) => ({ at: f.path, file: f.file }))),
  ];
  return named.flatMap((n) => {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(n.file);
    } catch {
      return []; // (not there: the reader says so)
    }
    return st.isFile() && (st.mode & 0o044) !== 0 ? [{ path: keyText(n.at), at: n.at, file: n.file, mode: st.mode & 0o7777 }] : [];
  });
}

/** The warning for an exposed secret file (config check, run and doctor say it in these words). */
export function exposedSecretWarning(e: ExposedSecret): string {
  const who = [e.mode & 0o040 ? 'its group' : '', e.mode & 0o004 ? 'others' : ''].filter(Boolean).join(' and ');
  return `${shownSource(e.file)} may be read by ${who} (mode ${e.mode.toString(8).padStart(4, '0')}): whoever reads it can use the secret; chmod 600 it (owned by the user onsight runs as), or hand it to the service as a systemd credential (LoadCredential=)`;
}

/** a reload's section that is as the daemon runs it (a problem there is a warning: the daemon keeps what it read at its start) */
function unchangedFromRunning(config: Config, opts: EnvironmentCheckOptions, section: SecretUse['section']): boolean {
  return opts.running !== undefined && JSON.stringify(opts.running[section]) === JSON.stringify(config[section]);
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
  for (const s of secretsOf(config)) {
    const at = { path: keyText(s.path), line: locate(s.path) };
    const asRunning = unchangedFromRunning(config, opts, s.section);
    const refuse = (message: string) => {
      // (tokens are read again at a reload, token by token: net/webconfig.ts listenerTokens)
      const keeps = s.token ? 'this reload revokes a token whose file is gone, empty or refused by its permissions, and keeps the one it had for another it cannot read' : 'it keeps what it read at its start';
      if (asRunning) loaded.warnings.push({ ...at, message: `${message} (as the daemon runs it: ${keeps}; a restart would refuse it)` });
      else issues.push({ ...at, message, ...(MAY_RESOLVE.test(message) ? { mayResolve: true } : {}) });
    };
    // a variable the unit sets (Environment=, EnvironmentFile=, a container's env) is not in the
    // shell of an operator running config check: said, not refused (review: deploy gates failed)
    const name = s.source.passwordEnv;
    if (name !== undefined && opts.checkOnly && ENV_NAME.test(name) && !env[name]) {
      loaded.warnings.push({ ...at, message: `environment variable ${shownSource(name, 'env')} not checked: it is not set here (config check outside the unit); run needs it set (Environment= or EnvironmentFile= in the unit)` });
      continue;
    }
    if (s.source.passwordEnv === undefined && s.source.credential !== undefined && !env.CREDENTIALS_DIRECTORY && opts.checkOnly) {
      loaded.warnings.push({ ...at, message: `systemd credential ${shownSource(s.source.credential, 'name')} not checked: $CREDENTIALS_DIRECTORY is not set (config check outside the unit); run in the unit needs LoadCredential=${shownSource(s.source.credential, 'name') === NOT_SHOWN ? 'NAME' : s.source.credential}:FILE (run systemd-run -p LoadCredential=… onsight config check to check it)` });
      continue;
    }
    // the file the loader will read; a FIFO is not waited on here (the loader's read would wait for a writer)
    const file = secretFile(s, env);
    const kind = file === undefined ? undefined : blockingKind(file);
    if (file !== undefined && kind !== undefined) {
      loaded.warnings.push({ ...at, message: notReadWarning(file, kind, 'this check') });
      continue;
    }
    try {
      s.read(env);
    } catch (err) {
      refuse((err as Error).message);
    }
  }
}

/** One TLS file the config names: its role, where (the key naming it) and the words for it. */
interface TlsFile {
  role: 'cert' | 'key' | 'ca';
  file: string;
  path: (string | number)[];
  what: string;
  /** read by the daemon, but its content used by nothing (PostgreSQL's with sslmode=disable): only its reading is checked */
  unused?: boolean;
}

/** The TLS files of one listener or client, loaded together by the daemon (a key goes with its certificate). */
interface TlsUse {
  section: 'scanner' | 'state' | 'inputs' | 'http';
  files: TlsFile[];
}

/** Every TLS file the daemon loads at start: syslog TLS and HTTP inputs, the status listener, the scanner's CA, PostgreSQL's ssl* URL parameters. */
function tlsUsesOf(config: Config): TlsUse[] {
  const out: TlsUse[] = [];
  const listener = (tls: { cert: string; key: string; ca?: string } | undefined, at: (string | number)[], section: 'inputs' | 'http') => {
    if (!tls) return;
    out.push({ section, files: [
      { role: 'cert', file: tls.cert, path: [...at, 'cert'], what: 'TLS certificate' },
      { role: 'key', file: tls.key, path: [...at, 'key'], what: 'TLS key' },
      ...(tls.ca !== undefined ? [{ role: 'ca' as const, file: tls.ca, path: [...at, 'ca'], what: 'TLS CA bundle' }] : []),
    ] });
  };
  // (load.ts refuses tls on a listener that is not tls://: a syslog input's tls is its TLS server's)
  config.inputs.forEach((inp, i) => {
    if (inp.type === 'syslog' || inp.type === 'http') listener(inp.tls, ['inputs', i, 'tls'], 'inputs');
  });
  if (config.http.enabled) listener(config.http.tls, ['http', 'tls'], 'http');
  const ca = (config.scanner as Record<string, unknown>).ca;
  if (typeof ca === 'string') out.push({ section: 'scanner', files: [{ role: 'ca', file: ca, path: ['scanner', 'ca'], what: 'scanner CA bundle' }] });
  // (node-postgres reads these files when it parses the URL, at start)
  const state = config.state;
  if (typeof state !== 'string') {
    const params = pgUrlParams(state.postgres);
    const files: TlsFile[] = [];
    for (const [name, role] of [['sslcert', 'cert'], ['sslkey', 'key'], ['sslrootcert', 'ca']] as const) {
      const file = params.get(name);
      // (sslmode=disable: node-postgres still reads the files, then uses none of them)
      if (file) files.push({ role, file, path: ['state', 'postgres'], what: `PostgreSQL ${name}`, ...(params.get('sslmode') === 'disable' ? { unused: true } : {}) });
    }
    if (files.length) out.push({ section: 'state', files });
  }
  return out;
}

/**
 * A PostgreSQL URL's parameters as node-postgres reads them (pg-connection-string's parse, without
 * its reads of the files): through a URL (a `#fragment` is no part of a value), the last of a
 * repeated parameter winning; none for the socket form (`/run/postgresql db`).
 */
function pgUrlParams(text: string): Map<string, string> {
  const out = new Map<string, string>();
  if (text.startsWith('/')) return out;
  let str = text;
  if (/ |%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(str)) str = encodeURI(str).replace(/%25(\d\d)/g, '%$1');
  let url: URL;
  try {
    url = new URL(str, 'postgres://base');
  } catch {
    try {
      url = new URL(str.replace('@/', '@___DUMMY___/'), 'postgres://base');
    } catch {
      return out; // (the schema check says what is wrong with the URL)
    }
  }
  for (const [k, v] of url.searchParams.entries()) out.set(k, v);
  return out;
}

/** an OpenSSL error's reason without its code (`PEM routines::no start line`); it never holds the file's content */
const sslReason = (err: unknown) => (err as Error).message.replace(/^error:[0-9A-Fa-f]+:/, '');

/**
 * Does each TLS file load as the daemon loads it: read whole, then a secure context built from it
 * (node's createSecureContext, as the TLS and HTTPS servers build theirs), so that a garbage PEM, an
 * encrypted key or a key that is not the certificate's is refused here rather than at start (or at
 * every handshake). Problems name the key of the file and its line; no byte of a file is printed. A
 * file not there yet, unreadable or empty may come (a certificate an ACME client writes after boot):
 * mayResolve, as for a secret file. A FIFO or a device is not read: said as a warning.
 */
function checkTlsFiles(loaded: LoadedConfig, opts: EnvironmentCheckOptions, issues: ConfigIssue[]): void {
  const { config, locate } = loaded;
  for (const use of tlsUsesOf(config)) {
    const asRunning = unchangedFromRunning(config, opts, use.section);
    const refuse = (f: TlsFile, message: string, mayResolve = false) => {
      const at = { path: keyText(f.path), line: locate(f.path) };
      if (asRunning) loaded.warnings.push({ ...at, message: `${message} (as the daemon runs it: its listener keeps the certificates it has; a restart would refuse it)` });
      else issues.push({ ...at, message, ...(mayResolve ? { mayResolve: true } : {}) });
    };
    const pem = new Map<TlsFile['role'], { f: TlsFile; data: Buffer }>();
    for (const f of use.files) {
      const kind = blockingKind(f.file);
      if (kind !== undefined) {
        loaded.warnings.push({ path: keyText(f.path), line: locate(f.path), message: `${f.what} ${notReadWarning(f.file, kind, 'this check')}` });
        continue;
      }
      let data: Buffer;
      try {
        data = readFileSync(f.file);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        refuse(f, `${f.what} ${shownSource(f.file)} cannot be read (${code})`, /^(ENOENT|EACCES|EPERM|ENOTDIR)$/.test(code));
        continue;
      }
      if (f.unused) continue; // (read, as node-postgres reads it; its content goes nowhere)
      if (data.toString('latin1').trim() === '') {
        refuse(f, `${f.what} ${shownSource(f.file)} is empty`, true);
        continue;
      }
      pem.set(f.role, { f, data });
    }
    const cert = pem.get('cert');
    const key = pem.get('key');
    const ca = pem.get('ca');
    let certOk = false;
    let keyOk = false;
    if (cert) {
      try {
        createSecureContext({ cert: cert.data });
        certOk = true;
      } catch (err) {
        refuse(cert.f, `${cert.f.what} ${shownSource(cert.f.file)} holds no usable PEM certificate (${sslReason(err)})`);
      }
    }
    if (key) {
      try {
        createSecureContext({ key: key.data });
        keyOk = true;
      } catch (err) {
        // (the header says so without the key: onsight gives no passphrase)
        refuse(key.f, /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: *4,ENCRYPTED/.test(key.data.toString('latin1'))
          ? `${key.f.what} ${shownSource(key.f.file)} is encrypted: onsight gives no passphrase (write it decrypted, readable by onsight alone: openssl pkey -in ENCRYPTED -out KEY)`
          : `${key.f.what} ${shownSource(key.f.file)} holds no usable PEM private key (${sslReason(err)})`);
      }
    }
    if (cert && key && certOk && keyOk) {
      // (createSecureContext refuses a pair of one type whose values differ; a key of another type, an
      // EC key for an RSA certificate, it takes, and every handshake then fails: checkPrivateKey sees both)
      let matches: boolean;
      try {
        createSecureContext({ cert: cert.data, key: key.data });
        matches = new X509Certificate(cert.data).checkPrivateKey(createPrivateKey(key.data));
      } catch {
        matches = false;
      }
      // (PostgreSQL's both sit in state.postgres: the parameter names the certificate)
      const certKey = keyText(cert.f.path) === keyText(key.f.path) ? cert.f.what : keyText(cert.f.path);
      if (!matches) refuse(key.f, `${key.f.what} ${shownSource(key.f.file)} is not the private key of the certificate ${shownSource(cert.f.file)} (${certKey})`);
    }
    if (ca) checkCaBundle(ca.f, ca.data, refuse, (message) => loaded.warnings.push({ path: keyText(ca.f.path), line: locate(ca.f.path), message }));
  }
}

const CERT_LABEL = /^(TRUSTED |X509 )?CERTIFICATE$/;

/**
 * A CA bundle as node reads it: its PEM blocks in order, whatever their label, up to the first it
 * cannot read (node stops there: no certificate from it on is trusted, review). A bundle with no
 * certificate, or whose first certificate is not read, trusts no peer: refused. A block that breaks
 * the bundle after a good certificate, or a BEGIN line without its END, is said (node verifies with
 * the certificates before it).
 */
function checkCaBundle(f: TlsFile, data: Buffer, refuse: (f: TlsFile, message: string) => void, warn: (message: string) => void): void {
  const text = data.toString('latin1');
  try {
    createSecureContext({ ca: data });
  } catch (err) {
    return refuse(f, `${f.what} ${shownSource(f.file)}: it cannot be loaded (${sslReason(err)})`);
  }
  const begins = (text.match(/-----BEGIN [^\r\n-]+-----/g) ?? []).length;
  const blocks = [...text.matchAll(/-----BEGIN ([^\r\n-]+)-----([\s\S]*?)-----END \1-----/g)];
  const certs = blocks.filter((b) => CERT_LABEL.test(b[1])).length;
  if (!certs) return refuse(f, `${f.what} ${shownSource(f.file)} holds no PEM certificate`);
  let good = 0;
  for (const [whole, label, body] of blocks) {
    let why: string | undefined;
    if (CERT_LABEL.test(label)) {
      try {
        new X509Certificate(whole.replace(/(BEGIN|END) X509 CERTIFICATE/g, '$1 CERTIFICATE'));
      } catch (err) {
        why = sslReason(err);
      }
    } else {
      // (another kind, a CRL: node reads it as base64 too; header lines `Name: value` aside)
      const b64 = body.split(/\r?\n/).filter((l) => !l.includes(':')).join('').trim();
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) why = `its ${label} block is no base64`;
    }
    if (why !== undefined) {
      if (good === 0) return refuse(f, `${f.what} ${shownSource(f.file)}: a block before any certificate cannot be read (${why}): node trusts none of the bundle`);
      return warn(`${f.what} ${shownSource(f.file)}: a block after certificate #${good} cannot be read (${why}): node trusts the ${good} before it and none from it on (${certs - good} of ${certs} not)`);
    }
    if (CERT_LABEL.test(label)) good++;
  }
  if (begins !== blocks.length) warn(`${f.what} ${shownSource(f.file)}: ${begins - blocks.length} BEGIN line(s) without their END: node may trust none of the certificates from there on`);
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
      const hint = problem ? undefined : globLiteralHint(inp.path);
      if (hint) loaded.warnings.push({ path: `inputs[${i}].path`, line: locate(['inputs', i, 'path']), message: hint });
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
  checkTlsFiles(loaded, opts, issues);
  // (a file refused already is not also said to be exposed)
  const refused = new Set(issues.map((i) => i.path));
  for (const e of exposedSecretFiles(config)) if (!refused.has(e.path)) loaded.warnings.push({ path: e.path, line: locate(e.at), message: exposedSecretWarning(e) });
  if (issues.length || !registry) throw new ConfigError(issues, origin);
  return registry;
}
