/**
 * Reads and validates the config. Every problem is reported with its key path and, when it came
 * from a file, its line, e.g. `onsight.yaml:12: regions[0].cidrs[1]: not a CIDR or IP address`.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { globToRegExp, isGlob } from '../sources/file/input.js';
import { LineCounter, parseDocument, isMap, isNode, isScalar, type Document } from 'yaml';
import { ConfigError, OnsightError, type ConfigIssue } from '../errors.js';
import { canonicalIp, cidrsOverlap, parseCidr } from '../util/ip.js';
import { isIP } from 'node:net';
import { allowedRanges, rangesOverlap, uncoveredParts } from '../util/ip-ranges.js';
import { configSchema, type Config } from './schema.js';
import { DEFAULT_CONFIG } from './default.js';
import { urlCredentials, urlQueryProblem } from '../util/url.js';
import { postgresUrlSecret } from '../cluster/config.js';
import { isLoopbackHost, listensOnLoopback, parseHttpListen } from '../net/webconfig.js';
import { parseListen } from '../sources/syslog/address.js';
import { fmtDuration } from '../policy/policy.js';

export interface LoadedConfig {
  config: Config;
  /** the file it came from, or `(embedded default)` */
  origin: string;
  /** problems that do not stop the daemon (overlapping regions, say) */
  warnings: ConfigIssue[];
  /** the line of a key path in the file, for errors found later (unknown formats, plug-ins) */
  locate: (path: PropertyKey[]) => number | undefined;
}

function pathText(path: PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

function lineOf(doc: Document, lc: LineCounter, path: (PropertyKey | { key: string })[]): number | undefined {
  // a key itself (`{ key }` last): the line of the key, not of its value (a block value starts on the next)
  const last = path[path.length - 1];
  if (typeof last === 'object' && last !== null) {
    const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1) as (string | number)[], true);
    const pair = isMap(parent) ? parent.items.find((p) => isScalar(p.key) && p.key.value === last.key) : undefined;
    if (pair && isNode(pair.key) && pair.key.range) return lc.linePos(pair.key.range[0]).line;
    return lineOf(doc, lc, path.slice(0, -1) as PropertyKey[]);
  }
  // walk up until a node exists (a missing key is reported on its parent)
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as (string | number)[], true);
    if (isNode(node) && node.range) return lc.linePos(node.range[0]).line;
  }
  return undefined;
}

/** Validate a plain object (already parsed); `locate` maps a key path to a line. */
export function validateConfig(raw: unknown, locate: (path: (PropertyKey | { key: string })[]) => number | undefined = () => undefined, file?: string): LoadedConfig {
  const r = configSchema.safeParse(raw ?? {});
  if (!r.success) {
    // (an unknown key on its own line, not its parent's: the first of them)
    const issues = r.error.issues.map((i) => ({ path: pathText(i.path), line: locate(i.code === 'unrecognized_keys' && i.keys.length ? [...i.path, { key: i.keys[0] }] : i.path), message: i.message }));
    throw new ConfigError(issues, file);
  }
  const config = r.data;
  const errors: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const at = (path: PropertyKey[], message: string) => ({ path: pathText(path), line: locate(path), message });

  // (every scanner with a URL: Rapid7 drops user info silently, so a secret there would sit in the file unnoticed)
  if ('url' in config.scanner && typeof config.scanner.url === 'string') {
    const why = urlCredentials(config.scanner.url);
    // never echo the URL: it holds the secret
    if (why) errors.push(at(['scanner', 'url'], `credentials in the URL (${why}) are refused: use passwordFile, passwordEnv or credential`));
    const query = why ? undefined : urlQueryProblem(config.scanner.url);
    if (query) errors.push(at(['scanner', 'url'], query));
    // every call carries the password or API keys (Basic auth, X-ApiKeys): plain HTTP beyond loopback gives them to the path
    let u: URL | undefined;
    try {
      u = new URL(config.scanner.url);
    } catch {
      u = undefined; // (the schema refused it)
    }
    if (u?.protocol === 'http:' && !isLoopbackHost(u.hostname.replace(/^\[|\]$/g, ''))) {
      warnings.push(at(['scanner', 'url'], `plain http:// to ${u.host}: every call carries the scanner's ${config.scanner.type === 'tenable' ? 'API keys' : 'user name and password'} in the clear, for anyone on the path to read and use (use https://; http is for an emulator on loopback)`));
    }
  }
  if (typeof config.state !== 'string') {
    const why = postgresUrlSecret(config.state.postgres);
    if (why) errors.push(at(['state', 'postgres'], `credentials in the URL (${why}) are refused: use passwordFile, passwordEnv or credential`));
  }
  // the status page shows each device's addresses, hostnames and users: beyond loopback, say so where no token guards it
  if (config.http.enabled && !config.http.tokens?.length && !config.http.tls?.requireClientCert && !listensOnLoopback(config.http.listen)) {
    warnings.push(at(['http', 'listen'], config.http.allowUnauthenticated
      ? `${config.http.listen} is not loopback, http.tokens is empty and http.allowUnauthenticated is set: the status page, /api/status and /api/why show every device's addresses, hostnames and user names to anyone who can reach it`
      : `${config.http.listen} is not loopback and http.tokens is empty: the status page, /api/status and /api/why answer loopback clients only (403 to others; /metrics and /healthz answer anyone): set http.tokens to reach them from elsewhere`));
  }
  // a token sent over plain HTTP beyond loopback can be read by anyone on the path, and then replayed
  const clearTokens = (web: { listen: string; tls?: unknown; tokens?: unknown[] }, path: PropertyKey[], what: string) => {
    if (web.tokens?.length && !web.tls && !listensOnLoopback(web.listen)) {
      warnings.push(at([...path, 'listen'], `${web.listen} is not loopback and ${what}.tls is not set: every request carries its token (${what}.tokens) in the clear, for anyone on the path to read and use (set ${what}.tls: {cert, key})`));
    }
  };
  if (config.http.enabled) clearTokens(config.http, ['http'], 'http');
  config.inputs.forEach((inp, i) => {
    if (inp.type === 'http') clearTokens(inp, ['inputs', i], `inputs[${i}]`);
    // a syslog listener anyone can reach takes forged DHCP and VPN lines as events: say so where nothing limits who sends
    if (inp.type !== 'syslog' || inp.allow?.length || inp.tls?.requireClientCert) return;
    let where: ReturnType<typeof parseListen>;
    try {
      where = parseListen(inp.listen);
    } catch {
      return; // (refused below, with its line)
    }
    if (isLoopbackHost(where.host)) return;
    const udp = where.proto === 'udp';
    warnings.push(at(['inputs', i, 'listen'], `${inp.listen} is not loopback and has no allow list${udp ? '' : ' nor tls.requireClientCert'}: anyone who can reach it can send lines that onsight takes as DHCP and VPN events (a forged lease gets an address in scope scanned; a forged release or tunnel-down ends a device's presence, and can cancel its scan): set allow: [the CIDRs of your log senders]${udp ? '' : ', or TLS with requireClientCert'}`));
  });
  if (config.cluster && typeof config.state === 'string') {
    errors.push(at(['cluster'], 'cluster mode needs a PostgreSQL state (state: { postgres: "postgres://USER@HOST/DB", passwordFile: ... }); a SQLite file cannot be shared by two nodes'));
  }
  const names = new Set<string>();
  config.regions.forEach((r, i) => {
    // only the Qualys client sends a profile with each launch; the others would silently ignore it
    if (r.optionProfile !== undefined && config.scanner.type !== 'qualys' && config.scanner.type !== 'dry-run') {
      errors.push(at(['regions', i, 'optionProfile'], `a region's optionProfile is used by the qualys scanner only (scanner.type is ${config.scanner.type}: configure its template instead)`));
    }
    if (names.has(r.name)) errors.push(at(['regions', i, 'name'], `region "${r.name}" is defined twice`));
    names.add(r.name);
  });
  // the allowed scope, once, in one pass over the exclusions (an entry these ranges cannot read, a zone id: undefined, not judged)
  let allowed: string[] | undefined;
  try {
    allowed = allowedRanges(config.policy.scope, config.policy.scope, config.policy.exclude);
  } catch {
    allowed = undefined;
  }
  // scheduler.rangeScans: each key a region, each entry a range the scope leaves something of
  const rangeScans = config.scheduler.rangeScans;
  for (const [name, list] of Object.entries(rangeScans.targets)) {
    if (!names.has(name)) errors.push(at(['scheduler', 'rangeScans', 'targets', name], `no region is named "${name}"`));
    list.forEach((t, j) => {
      try {
        if (allowed ? !rangesOverlap([t], allowed) : allowedRanges([t], config.policy.scope, config.policy.exclude).length === 0) warnings.push(at(['scheduler', 'rangeScans', 'targets', name, j], `${t} lies wholly outside policy.scope or inside policy.exclude: its runs would scan none of it`));
      } catch (err) {
        errors.push(at(['scheduler', 'rangeScans', 'targets', name, j], (err as Error).message.replace(/^range: /, '')));
      }
    });
  }
  if (rangeScans.times.length > 0 && config.scanner.type !== 'qualys' && config.scanner.type !== 'dry-run') {
    errors.push(at(['scheduler', 'rangeScans', 'times'], `range scans are Qualys scheduled scans (scanner.type is ${config.scanner.type})`));
  }
  config.regions.forEach((r, i) => {
    if (r.scanWindowEnd === 'stop' && !r.scanWindows) errors.push(at(['regions', i, 'scanWindowEnd'], 'stop needs scanWindows: a region without them is open at any time (a blackout stops its scans whatever this says)'));
  });
  const applianceOwner = new Map<string, string>();
  config.regions.forEach((r, i) => r.appliances.forEach((a, j) => {
    const other = applianceOwner.get(a.name);
    if (other && other !== r.name) warnings.push(at(['regions', i, 'appliances', j], `appliance "${a.name}" also serves region "${other}"`));
    applianceOwner.set(a.name, r.name);
  }));
  // overlapping CIDRs across regions: longest prefix wins, but equal prefixes are ambiguous
  const all = config.regions.flatMap((r, i) => r.cidrs.map((c, j) => ({ r: r.name, c: parseCidr(c)!, path: ['regions', i, 'cidrs', j] })));
  for (let a = 0; a < all.length; a++) {
    for (let b = a + 1; b < all.length; b++) {
      if (all[a].r === all[b].r || !cidrsOverlap(all[a].c, all[b].c)) continue;
      if (all[a].c.bits === all[b].c.bits) errors.push(at(all[b].path, `${all[b].c.text} of region "${all[b].r}" is the same network as ${all[a].c.text} of region "${all[a].r}"`));
      else warnings.push(at(all[b].path, `${all[b].c.text} (region "${all[b].r}") overlaps ${all[a].c.text} (region "${all[a].r}"): the longest prefix wins`));
    }
  }
  // one lead for every window: a lead of half a window or more makes the device due at half its window
  // (the floor), so a lead sized for the default window nearly doubles the scans of a short rule's pool
  const lead = config.policy.rescanLead;
  if (lead !== undefined) {
    const windows: { path: (string | number)[]; s: number }[] = [
      { path: ['policy', 'rescanAfter'], s: config.policy.rescanAfter },
      ...config.policy.rules.map((r, i) => ({ path: ['policy', 'rules', i, 'rescanAfter'], s: r.rescanAfter })),
      ...config.regions.flatMap((r, i) => (r.rescanAfter !== undefined ? [{ path: ['regions', i, 'rescanAfter'], s: r.rescanAfter }] : [])),
    ];
    for (const w of windows.filter((x) => lead >= x.s / 2)) {
      warnings.push(at(w.path, `policy.rescanLead (${fmtDuration(lead)}) is half this window (${fmtDuration(w.s)}) or more: devices here are due again ${fmtDuration(w.s / 2)} after a scan, half the window (leave rescanLead out for a lead scaled to each window: a seventh, at most a day)`));
    }
  }
  // nothing scanned anywhere, or in a whole region: said, not refused (a region may be named ahead of its scope)
  if (allowed?.length === 0) {
    warnings.push(at(['policy', 'exclude'], 'policy.exclude covers all of policy.scope: no address will ever be scanned'));
  } else if (allowed) {
    config.regions.forEach((r, i) => {
      let outside = false;
      try {
        outside = r.cidrs.length > 0 && !rangesOverlap(r.cidrs, allowed!);
      } catch {
        /* not judged */
      }
      if (outside) warnings.push(at(['regions', i, 'cidrs'], `region "${r.name}" lies wholly outside policy.scope or inside policy.exclude: no device there will ever be scanned`));
    });
    warnings.push(...scopeWithoutRegion(config, at));
  }
  config.inputs.forEach((inp, i) => {
    if (inp.type !== 'syslog') return;
    if (inp.listen.startsWith('tls:') && !inp.tls) errors.push(at(['inputs', i], 'a tls:// listener needs tls.cert and tls.key'));
    if (!inp.listen.startsWith('tls:') && inp.tls) errors.push(at(['inputs', i, 'tls'], 'tls settings on a non-tls listener'));
  });
  // the same syslog listen twice (port 0 too), or two listeners on one port (a wildcard address takes the port on
  // every address): run would fail to bind the second
  const sockets = listeners(config);
  for (let a = 0; a < sockets.length; a++) {
    const s = sockets[a];
    const earlier = sockets.slice(0, a);
    if (s.syslog && earlier.some((b) => b.syslog && b.text === s.text)) {
      errors.push(at(s.path, `${s.text} is configured twice`));
      continue;
    }
    const clash = earlier.find((b) => b.proto === s.proto && b.port === s.port && s.port !== 0 && hostsClash(b.host, s.host));
    if (clash) errors.push(at(s.path, `${s.text} takes the same ${s.proto.toUpperCase()} port as ${clash.text} (${clash.path.join('.').replace(/\.(\d+)/g, '[$1]')}): one of them could not listen`));
  }
  // the same file tailed by two inputs: every line would be applied twice (and, for the same path,
  // the two share one checkpoint row)
  const tailed = config.inputs.map((inp, i) => ({ inp, i })).filter(({ inp }) => inp.type === 'file') as { inp: { path: string }; i: number }[];
  for (let a = 0; a < tailed.length; a++) {
    const { inp, i } = tailed[a];
    const mine = resolve(inp.path);
    for (const { inp: o, i: j } of tailed.slice(0, a)) {
      const theirs = resolve(o.path);
      const same = mine === theirs || (isGlob(theirs) && !isGlob(mine) && globToRegExp(theirs).re.test(mine)) || (isGlob(mine) && !isGlob(theirs) && globToRegExp(mine).re.test(theirs));
      if (same) errors.push(at(['inputs', i, 'path'], `${inp.path} is also read by inputs[${j}] (${o.path}): each of its lines would be applied twice`));
    }
  }
  if (errors.length) throw new ConfigError(errors, file);
  return { config, origin: file ?? '(embedded default)', warnings, locate };
}

/** how many of the ranges no region covers a warning names before it says "and N more" */
const UNCOVERED_SHOWN = 4;

/**
 * The parts of policy.scope that no region's CIDRs cover, exclusions cut out: a device there is in
 * scope but `no-region`, never scanned. A warning per scope entry (what an earlier entry has said is
 * not said again), naming the uncovered ranges, the largest few of them. Not refused: a wide
 * scope with regions for the sites only (scope 10.0.0.0/8, one region 10.20.0.0/16) is a choice.
 */
function scopeWithoutRegion(config: Config, at: (path: PropertyKey[], message: string) => ConfigIssue): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  let parts: ReturnType<typeof uncoveredParts>;
  let unexcluded: ReturnType<typeof uncoveredParts>;
  try {
    parts = uncoveredParts(config.policy.scope, [...config.policy.exclude, ...config.regions.flatMap((r) => r.cidrs)]);
    unexcluded = uncoveredParts(config.policy.scope, config.policy.exclude, false);
  } catch {
    return out; // (a list these ranges cannot read: refused elsewhere, not judged here)
  }
  config.policy.scope.forEach((entry, i) => {
    const p = parts[i];
    if (!p || p.size === 0n) return;
    let what: string;
    if (p.size === p.entrySize) what = 'no region covers it';
    else {
      const permille = (p.size * 1000n) / p.entrySize; // (rounded down: never 100 % when a part is covered)
      const share = permille === 0n ? 'less than 0.1 %' : `${permille / 10n}.${permille % 10n} %`;
      const more = p.pieces.length > UNCOVERED_SHOWN ? ` and ${p.pieces.length - UNCOVERED_SHOWN} more` : '';
      const cut = (unexcluded[i]?.size ?? p.entrySize) < p.entrySize;
      // (the largest first: an exclusion of one address left fragments around it that said nothing)
      what = `no region covers ${p.pieces.slice(0, UNCOVERED_SHOWN).map((x) => x.text).join(', ')}${more} (${share} of its addresses${cut ? ', outside policy.exclude' : ''})`;
    }
    out.push(at(['policy', 'scope', i], `${entry}: ${what}: devices there are never scanned (no-region; add a region for them, or narrow policy.scope)`));
  });
  return out;
}

/**
 * Can two sockets on one port and protocol not both bind? The same address; `::` (dual-stack, as
 * onsight binds it) with any address; `0.0.0.0` with any IPv4 address (not an IPv6 one: Linux binds
 * 0.0.0.0:P and [::1]:P together). Names are compared as written.
 */
function hostsClash(a: string, b: string): boolean {
  // `localhost` binds to whichever of 127.0.0.1 and ::1 the resolver gives first: either may clash
  const named = (h: string) => (h === 'localhost' ? ['127.0.0.1', '::1'] : [h]);
  return named(a).some((x) => named(b).some((y) => addressesClash(x, y)));
}

function addressesClash(a: string, b: string): boolean {
  const ca = canonicalIp(a) ?? a, cb = canonicalIp(b) ?? b;
  if (ca === cb || ca === '::' || cb === '::') return true;
  const v4 = (h: string) => isIP(h) === 4;
  return (ca === '0.0.0.0' && v4(cb)) || (cb === '0.0.0.0' && v4(ca));
}

interface ListenSocket { proto: 'tcp' | 'udp'; host: string; port: number; text: string; path: (string | number)[]; syslog: boolean }

/** Every socket the config listens on: syslog inputs, HTTP inputs, the status page (a malformed one is the schema's to say). */
function listeners(config: Config): ListenSocket[] {
  const out: ListenSocket[] = [];
  const add = (text: string, path: (string | number)[], syslog: boolean) => {
    try {
      const l = syslog ? parseListen(text) : { proto: 'tcp' as const, ...parseHttpListen(text) };
      // (parseListen and parseHttpListen give IPv6 hosts without brackets)
      out.push({ proto: l.proto === 'udp' ? 'udp' : 'tcp', host: l.host.toLowerCase(), port: l.port, text, path, syslog });
    } catch {
      /* malformed: the schema has said so */
    }
  };
  config.inputs.forEach((inp, i) => {
    if (inp.type === 'syslog' || inp.type === 'http') add(inp.listen, ['inputs', i, 'listen'], inp.type === 'syslog');
  });
  if (config.http.enabled) add(config.http.listen, ['http', 'listen'], false);
  return out;
}

export { urlCredentials, redactUrl, redactUrlsIn } from '../util/url.js';

export function parseConfigText(text: string, file: string): LoadedConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(doc.errors.map((e) => ({ path: '', line: e.linePos?.[0]?.line ?? lc.linePos(e.pos[0]).line, message: `YAML: ${e.message.split('\n')[0]}` })), file);
  }
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (err) {
    // (an alias bomb: "Excessive alias count indicates a resource exhaustion attack")
    throw new ConfigError([{ path: '', line: undefined, message: `YAML: ${(err as Error).message}` }], file);
  }
  const loaded = validateConfig(raw, (path) => lineOf(doc, lc, path), file);
  // (a tag the YAML library does not know, `!unknown [...]`, is read as if it were not there: said)
  for (const w of doc.warnings) loaded.warnings.push({ path: '', line: w.linePos?.[0]?.line ?? lc.linePos(w.pos[0]).line, message: `YAML: ${w.message.split('\n')[0]}` });
  return loaded;
}

export function loadConfig(file?: string): LoadedConfig {
  if (!file) return validateConfig(DEFAULT_CONFIG);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new OnsightError('ONSIGHT_CONFIG_UNREADABLE', `cannot read config ${file}: ${(err as Error).message}`);
  }
  return parseConfigText(text, file);
}
