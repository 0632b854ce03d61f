/**
 * `onsight doctor [--config FILE]`: a checklist of what the daemon needs, against the real
 * scanner API — config (and its warnings), state directory, inputs (ports, files, certificates),
 * credentials (read, never printed), API reachability, rate-limit headroom, each configured
 * appliance, regions without an online appliance. ✓ ok, ! worth a look, ✗ will not work.
 * Exit 0 when nothing failed (warnings allowed), 1 otherwise. It launches nothing.
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Logger } from '../log.js';
import type { Config } from '../config/schema.js';
import { redactUrlsIn, validateConfig, type LoadedConfig } from '../config/load.js';
import { formatIssues, type ConfigIssue } from '../errors.js';
import { BACKENDS, backendFor, createScanner } from '../scanners/registry.js';
import type { ApplianceStatus, Scanner } from '../scanners/types.js';
import { loadRegistry } from '../parsers/registry.js';
import { checkPostgres } from '../cluster/doctor.js';
import { policyFor, schedulerOptionsFor } from '../config/derive.js';
import { hasOurPrefix, startFrom } from '../scheduler/core.js';
import { profilesNamed } from '../scheduler/profile.js';
import { listensOnLoopback, loadTokens, shortTokensWarning, type TlsServerConfig, type TokenSource } from '../net/webconfig.js';
import { inputParserFormat } from '../daemon/inputs.js';
import { blockingSecrets, blockingTlsFiles, exposedSecretFiles, exposedSecretWarning, leasePathProblem, notReadWarning, type BlockingSecret } from '../config/check.js';
import { loadPassword, shownSource } from '../scanners/qualys/credentials.js';
import { TIMED_OUT, within } from '../util/timeout.js';
import { inspectStateFile } from '../store/db.js';

export interface DoctorOptions {
  /** a scanner to use instead of the configured one (tests) */
  scanner?: Scanner;
  env?: NodeJS.ProcessEnv;
  /** longest wait for one scanner call, ms (default: the scanner's own timeout + 30 s) */
  callTimeoutMs?: number;
}

type Mark = 'ok' | 'warn' | 'fail';
const SYMBOL: Record<Mark, string> = { ok: '✓', warn: '!', fail: '✗' };

export async function runDoctor(
  configOrLoaded: Config | LoadedConfig,
  log: Logger,
  out: { write(s: string): unknown },
  opts: DoctorOptions = {},
): Promise<number> {
  const loaded = 'config' in configOrLoaded && 'warnings' in configOrLoaded ? configOrLoaded : undefined;
  const config: Config = loaded ? loaded.config : (configOrLoaded as Config);
  const env = opts.env ?? process.env;
  const tally: Record<Mark, number> = { ok: 0, warn: 0, fail: 0 };
  const line = (m: Mark, what: string, text: string) => {
    tally[m]++;
    out.write(`${SYMBOL[m]} ${what}: ${text}\n`);
  };

  out.write(`onsight doctor — ${loaded?.origin ?? 'config'}\n`);

  // ---- config
  let warnings: ConfigIssue[] = loaded?.warnings ?? [];
  if (!loaded) {
    try {
      warnings = validateConfig(config).warnings;
    } catch (err) {
      line('fail', 'config', (err as Error).message);
    }
  }
  const sc = config.scanner;
  const backend = backendFor(sc);
  line('ok', 'config', `${config.inputs.length} input(s), ${config.regions.length} region(s), scanner ${sc.type}${backend.describe(sc) ? ` ${redactUrlsIn(backend.describe(sc))}` : ''}`);
  for (const w of warnings) line('warn', 'config', formatIssues([w], loaded?.origin));
  line('ok', 'scanner backend', `${sc.type}: ${backend.description} (backends: ${BACKENDS.map((b) => b.type).join(', ')}; a new vendor is a folder and an entry in src/scanners/registry.ts)`);
  try {
    const registry = await loadRegistry(config.parsers.directory);
    // the parser each input decodes with, by the function config check and run use (a lease database's format is no parser id)
    const unknown = config.inputs.flatMap((inp, i) => {
      const f = inputParserFormat(inp);
      return f !== undefined && f !== 'auto' && !registry.get(f) ? [`inputs[${i}].format ${f}`] : [];
    });
    if (unknown.length) line('fail', 'parsers', `unknown format(s): ${unknown.join(', ')} (known: auto, ${registry.ids().join(', ')})`);
    else line('ok', 'parsers', `${registry.ids().length} formats${config.parsers.directory ? ` (plug-ins from ${config.parsers.directory})` : ''}`);
  } catch (err) {
    line('fail', 'parsers', (err as Error).message);
  }

  // a secret whose file a read would wait on (a FIFO, a device) hung doctor: not read, as config
  // check does not; what would read it is skipped and the key said instead
  // (TLS files too: node-postgres reads the ssl* files of state.postgres, the scanner its CA, at connect)
  const waits = [...blockingSecrets(config, env), ...blockingTlsFiles(config).filter((b) => b.section === 'state' || b.section === 'scanner')];
  const notRead = (section: BlockingSecret['section'], under = '') => {
    const w = waits.filter((b) => b.section === section && b.path.startsWith(under));
    for (const b of w) line('warn', b.path, notReadWarning(b.file, b.kind, 'doctor'));
    return w.length > 0;
  };
  const tokensRead = (tokens: TokenSource[] | undefined, field: string, section: 'inputs' | 'http') => tokens?.filter((_t, j) => !notRead(section, `${field}[${j}].`));

  // ---- state
  if (typeof config.state === 'string') checkState(config.state, line);
  else if (notRead('state')) line('warn', 'state', 'PostgreSQL not checked: a file its connection reads is not read by doctor');
  else await checkPostgres(config.state, config.cluster, line, env);

  // ---- inputs
  const canBindLow = process.getuid?.() === 0 || hasCapability(10 /* CAP_NET_BIND_SERVICE */);
  const LOW_PORT = 'port below 1024: needs CAP_NET_BIND_SERVICE (systemd/install.sh writes the drop-in) or root';
  config.inputs.forEach((inp, n) => {
    if (inp.type === 'syslog') {
      if (lowPort(inp.listen) && !canBindLow) line('warn', `input ${inp.listen}`, LOW_PORT);
      else line('ok', `input ${inp.listen}`, `${inp.allow?.length ? `senders ${inp.allow.join(', ')}` : 'any sender (no allow list)'}`);
      if (!inp.allow?.length && !/^\w+:\/\/(127\.|\[::1\])/.test(inp.listen)) line('warn', `input ${inp.listen}`, 'no allow list: anyone who reaches the port can feed sightings');
      if (inp.tls) checkTlsFiles(inp.tls, `input ${inp.listen}`, line);
    } else if (inp.type === 'http') {
      const what = `input http://${inp.listen}`;
      if (lowPort(inp.listen) && !canBindLow) line('warn', what, LOW_PORT);
      else line('ok', what, `HEC and Sighting JSON; tokens ${inp.tokens.map((t) => t.name).join(', ')}${inp.tls ? '; TLS' : '; no TLS: tokens cross the network in clear'}`);
      if (inp.tls) checkTlsFiles(inp.tls, what, line);
      checkTokens(tokensRead(inp.tokens, `inputs[${n}].tokens`, 'inputs'), `inputs[${n}].tokens`, env, line);
    } else if (inp.type === 'lease') {
      // the lease database is read whole (dnsmasq) or tailed (Kea, ISC): a regular file this process can read
      const what = `input lease:${inp.path}`;
      const e = readable(inp.path);
      if (e === 'does not exist') line('warn', what, `${inp.format} lease database does not exist yet (it is read when it appears)`);
      else {
        const problem = e ?? leasePathProblem(inp.path);
        line(problem ? 'fail' : 'ok', what, problem ? `inputs[${n}].path: ${problem}` : `${inp.format} lease database, readable, ${statSync(inp.path).size} bytes`);
      }
    } else {
      if (/[*?[{]/.test(inp.path)) {
        const dir = dirname(inp.path);
        const e = readable(dir);
        line(e ? 'fail' : 'ok', `input ${inp.path}`, e ? `directory ${dir}: ${e}` : `glob in ${dir}`);
      } else {
        const e = readable(inp.path);
        if (e === 'does not exist') line('warn', `input ${inp.path}`, 'does not exist yet (it is picked up when it appears)');
        else line(e ? 'fail' : 'ok', `input ${inp.path}`, e ?? `readable, ${statSync(inp.path).size} bytes`);
      }
    }
  });
  if (config.http.enabled) {
    const loopback = listensOnLoopback(config.http.listen);
    line(loopback ? 'ok' : 'warn', 'http', loopback
      ? `status page and /metrics on ${config.http.listen}`
      : config.http.tokens?.length ? `status page and /metrics on ${config.http.listen}, with tokens ${config.http.tokens.map((t) => t.name).join(', ')}`
        : `status page and /metrics on ${config.http.listen}: not loopback, and it shows addresses, hostnames and user names (no authentication: set http.tokens)`);
    if (lowPort(config.http.listen) && !canBindLow) line('warn', 'http', `http.listen ${config.http.listen}: ${LOW_PORT}`);
    if (config.http.tls) checkTlsFiles(config.http.tls, 'http', line);
    checkTokens(tokensRead(config.http.tokens, 'http.tokens', 'http'), 'http.tokens', env, line);
  }
  // the webhook's shared secret, read as the daemon reads it at start (notify/webhook.ts)
  const hook = config.notify.webhook;
  if (hook && !notRead('notify')) {
    try {
      loadPassword({ passwordFile: hook.secret.file, passwordEnv: hook.secret.env, credential: hook.secret.credential }, env);
      line('ok', 'notify.webhook.secret', `read (not shown); events go to ${new URL(hook.url).origin}`);
    } catch (err) {
      line('fail', 'notify.webhook.secret', (err as Error).message.replace(/password file/g, 'secret file').replace(/ to be a password/, ' to be a secret'));
    }
  }

  // a secret file its group or others may read (config check says it in the same words)
  for (const e of exposedSecretFiles(config)) line('warn', e.path, exposedSecretWarning(e));

  // ---- the backend's own checks (credentials, files)
  const scannerWaits = notRead('scanner');
  if (scannerWaits) line('warn', 'scanner', `its credentials${opts.scanner ? '' : ' and its API'} not checked: a file it reads is not read by doctor`);
  else for (const l of backend.doctor(sc, { env })) line(l.mark, l.what, l.text);

  // ---- scanner API
  let scanner: Scanner | undefined = opts.scanner;
  if (!scanner && !scannerWaits) {
    try {
      const policy = policyFor(config);
      scanner = await createScanner(config, log, (ip) => policy.allowed(ip), env);
    } catch (err) {
      line('fail', 'scanner', (err as Error).message);
    }
  }
  if (scanner) {
    try {
      await checkScanner(scanner, config, line, opts.callTimeoutMs ?? backend.callTimeoutMs(sc));
    } finally {
      await scanner.close().catch(() => undefined);
    }
  }

  out.write(`\n${tally.ok} ok, ${tally.warn} warning(s), ${tally.fail} failure(s)${tally.fail ? '' : tally.warn ? ' — usable; look at the warnings' : ' — all good'}\n`);
  return tally.fail ? 1 : 0;
}

type Line = (m: Mark, what: string, text: string) => void;

async function checkScanner(scanner: Scanner, config: Config, line: Line, timeoutMs: number): Promise<void> {
  const what = scanner.pretend ? `scanner (${scanner.kind})` : `scanner API (${scanner.kind})`;
  const t0 = Date.now();
  let list: ApplianceStatus[];
  try {
    list = await withTimeout(scanner.appliances(), timeoutMs, 'the appliance list call');
  } catch (err) {
    const e = err as Error & { code?: string };
    line('fail', what, `not reachable or refused: ${e.message}${e.code ? ` (${e.code})` : ''}`);
    return;
  }
  line('ok', what, `reachable: appliance list (${list.length}) in ${Date.now() - t0} ms`);

  // one call on the scan API (launches share its budget), so its rate-limit headers are fresh
  try {
    const scans = await withTimeout(scanner.listScans({ launchedAfter: new Date(Date.now() - 86400_000) }), timeoutMs, 'the scan list call');
    // the prefix the daemon launches with (cluster.name in cluster mode), derived by the same function
    const prefix = schedulerOptionsFor(config, scanner).titlePrefix;
    const ours = scans.filter((x) => hasOurPrefix(x.title, prefix));
    const running = scans.filter((x) => x.state === 'running' || x.state === 'queued' || x.state === 'submitted');
    line('ok', 'scans', `${scans.length} launched in the last 24 h (${ours.length} by onsight${prefix === 'onsight' ? '' : `, titled "${prefix} …"`}), ${running.length} running or queued now`);
  } catch (err) {
    line('fail', 'scans', `cannot list scans: ${(err as Error).message}`);
  }
  if (scanner.scanProfiles) await checkProfiles(scanner, config, line, timeoutMs);
  const a = scanner.allowance();
  if (a.waitSec > 0) line('fail', 'rate limit', `the API asks to wait ${a.waitSec} s before the next call`);
  else if (a.remaining !== undefined) {
    const of = a.limit !== undefined ? ` of ${a.limit}` : '';
    const win = a.windowSec !== undefined ? ` per ${a.windowSec} s` : '';
    const conc = a.concurrencyLimit !== undefined ? `; concurrency ${a.concurrencyRunning ?? '?'}/${a.concurrencyLimit}` : '';
    const low = a.limit !== undefined ? a.remaining < a.limit * 0.1 : a.remaining < 10;
    line(low ? 'warn' : 'ok', 'rate limit', `${a.remaining}${of} calls left${win}${conc}${low ? ': little headroom; polls will stretch and launches may wait' : ''}`);
  } else if (scanner.pretend) line('ok', 'rate limit', `none (${scanner.kind})`);
  else line('warn', 'rate limit', 'the API reported no rate-limit headers');

  const byName = new Map(list.map((x) => [x.name, x]));
  for (const r of config.regions) {
    let online = 0;
    for (const ap of r.appliances) {
      const s = byName.get(ap.name);
      const label = `appliance ${ap.name} (${r.name})`;
      if (!s) {
        line('fail', label, `not in the scanner's appliance list${list.length ? ` (it has: ${list.slice(0, 8).map((x) => x.name).join(', ')}${list.length > 8 ? ', …' : ''})` : ''}`);
        continue;
      }
      if (!s.online) {
        line('warn', label, 'offline');
        continue;
      }
      online++;
      const busy = s.runningScans >= ap.maxScans;
      line(busy ? 'warn' : 'ok', label, `online, ${s.runningScans} scan(s) running, capacity ${ap.maxScans}${busy ? ': full now' : ''}`);
    }
    if (online === 0) line('warn', `region ${r.name}`, 'no online appliance: its hosts cannot be scanned until one is');
  }
}

/** The option profiles launches name (the scanner's own, each region's): what they say of hosts in parallel, against the config's. */
async function checkProfiles(scanner: Scanner, config: Config, line: Line, timeoutMs: number): Promise<void> {
  const opts = schedulerOptionsFor(config, scanner);
  // the profiles the scheduler reads (profile.ts), by the same rule
  const names = profilesNamed(opts.regions).map((p) => p.name);
  const configured = opts.hostsInParallel;
  let facts;
  try {
    facts = await withTimeout(scanner.scanProfiles!(names), timeoutMs, 'the option profile list call');
  } catch (err) {
    line('warn', 'option profile', `cannot read the option profiles (${(err as Error).message}): onsight takes hosts in parallel as scheduler.hostsInParallel, ${configured}`);
    return;
  }
  names.forEach((n, i) => {
    const f = facts[i];
    const label = n === undefined ? 'option profile' : `option profile ${n}`;
    if (!f) line('warn', label, `not in the scanner's option profile list: onsight takes its hosts in parallel as scheduler.hostsInParallel, ${configured}`);
    else if (f.hostsInParallel === undefined) line('warn', label, `${f.title} states no hosts in parallel for scanner appliances: scheduler.hostsInParallel, ${configured}, is used`);
    else if (f.hostsInParallel !== configured) {
      const uses = startFrom(f.hostsInParallel, opts) === configured
        ? `onsight keeps ${configured} (a profile lowers a value set, never raises it)`
        : 'onsight uses the profile\'s figure (the smallest where profiles differ)';
      line('warn', label, `${f.title} scans ${f.hostsInParallel} host(s) at once on an appliance${f.parallelScaling ? ' (parallel scaling on)' : ''}; scheduler.hostsInParallel says ${configured}: ${uses}`);
    }
    else line('ok', label, `${f.title} scans ${f.hostsInParallel} host(s) at once on an appliance${f.parallelScaling ? ' (parallel scaling on)' : ''}, as scheduler.hostsInParallel says`);
  });
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  const r = await within(p, ms);
  if (r === TIMED_OUT) throw new Error(`${what} took longer than ${Math.round(ms / 1000)} s`);
  return r;
}

/** The port of `listen` (udp://host:514, host:443, [::]:80) when it is below 1024 and not 0. */
function lowPort(listen: string): number | undefined {
  const port = Number(listen.split(':').pop());
  return port > 0 && port < 1024 ? port : undefined;
}

function checkTlsFiles(tls: TlsServerConfig, what: string, line: Line): void {
  for (const [k, p] of Object.entries({ cert: tls.cert, key: tls.key, ca: tls.ca })) {
    if (p === undefined) continue;
    const e = readable(p);
    if (e) line('fail', what, `tls.${k} ${shownSource(p)}: ${e}`);
  }
}

/** Tokens read by the loader the listeners use (net/webconfig.ts): a token that cannot be read stops `onsight run`. */
function checkTokens(tokens: TokenSource[] | undefined, field: string, env: NodeJS.ProcessEnv, line: Line): void {
  if (!tokens?.length) return;
  try {
    const short = shortTokensWarning(loadTokens(tokens, env));
    line(short ? 'warn' : 'ok', field, short ?? `${tokens.map((t) => t.name).join(', ')} read (not shown)`);
  } catch (err) {
    line('fail', field, (err as Error).message);
  }
}

function readable(path: string): string | undefined {
  if (!existsSync(path)) return 'does not exist';
  try {
    accessSync(path, constants.R_OK);
    return undefined;
  } catch (err) {
    return `not readable (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
}

function checkState(state: string, line: Line): void {
  if (state === ':memory:') return line('warn', 'state', 'in memory: nothing survives a restart');
  const file = resolve(state);
  try {
    if (existsSync(file)) {
      accessSync(file, constants.R_OK | constants.W_OK);
      // (its content too: a damaged file, or one from a newer onsight, was "readable and writable", and run then failed)
      const seen = inspectStateFile(file);
      if (!seen.ok) return line('fail', 'state', seen.error);
      if (seen.schema > seen.speaks) return line('fail', 'state', `${file}: schema ${seen.schema}, newer than this onsight knows (${seen.speaks}): upgrade onsight`);
      return line('ok', 'state', `${file} (${Math.round(statSync(file).size / 1024)} KiB) readable and writable, schema ${seen.schema}${seen.schema < seen.speaks ? ` (onsight run upgrades it to ${seen.speaks})` : ''}`);
    }
    let dir = dirname(file);
    while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
    accessSync(dir, constants.W_OK);
    line('ok', 'state', `${file} will be created (${dir} is writable)`);
  } catch (err) {
    line('fail', 'state', `${file}: not writable (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** Does this process hold a capability (effective set)? Linux only; false when unknown. */
function hasCapability(bit: number): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? (BigInt('0x' + m[1]) & (1n << BigInt(bit))) !== 0n : false;
  } catch {
    return false;
  }
}
