import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfigText } from '../src/config/load.js';
import { ConfigError } from '../src/errors.js';
import { allowedRanges, expandRanges, rangeMatcher, rangeSize } from '../src/util/ip-ranges.js';
import { decodeThreadOn } from '../src/config/derive.js';
import { checkConfigEnvironment } from '../src/config/check.js';
import { CLI, REPO } from './helpers/paths.js';
import { selfSignedCert } from './helpers/tls-cert.js';

function issuesOf(text: string) {
  try {
    parseConfigText(text, 'test.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('the embedded default is valid and is what `onsight run` uses without --config', () => {
    const { config, origin } = loadConfig();
    expect(origin).toBe('(embedded default)');
    expect(config.state).toBe('./data/onsight.db');
    expect(config.inputs.map((i) => (i.type === 'syslog' ? i.listen : i.path))).toEqual(['udp://127.0.0.1:5514', 'tcp://127.0.0.1:5514']);
    expect(config.scanner.type).toBe('dry-run');
  });

  it('ingest.decodeThread: auto (the default) is on with two or more cores; true/false are kept; anything else names the key', () => {
    const base = 'inputs: []\npolicy: { scope: ["10.0.0.0/8"] }\nregions: [{ name: r, cidrs: ["10.0.0.0/8"], appliances: [a] }]\n';
    const auto = parseConfigText(base, 'test.yaml').config;
    expect(auto.ingest.decodeThread).toBe('auto');
    expect(decodeThreadOn(auto, 1)).toBe(false);
    expect(decodeThreadOn(auto, 2)).toBe(true);
    expect(decodeThreadOn(parseConfigText(base + 'ingest: { decodeThread: false }\n', 'test.yaml').config, 8)).toBe(false);
    expect(decodeThreadOn(parseConfigText(base + 'ingest: { decodeThread: true }\n', 'test.yaml').config, 1)).toBe(true);
    expect(issuesOf(base + 'ingest: { decodeThread: yes please }\n').map((i) => i.path)).toEqual(['ingest.decodeThread']);
  });

  it('state: a SQLite file: URI is refused (better-sqlite3 took it as a path, node:sqlite as a URI); ./file:… is a path', () => {
    const base = 'policy: { scope: ["10.0.0.0/8"] }\nregions: [{ name: r, cidrs: ["10.0.0.0/8"], appliances: [a] }]\n';
    const issues = issuesOf(`state: "file:st.db"\n${base}`);
    expect(issues.map((i) => [i.path, i.message])).toEqual([['state', expect.stringMatching(/a path, not a SQLite file: URI/)]]);
    expect(parseConfigText(`state: "./file:st.db"\n${base}`, 'test.yaml').config.state).toBe('./file:st.db');
  });

  it('inputs[].udpReceiver: auto by default, native or dgram; anything else names the key and the choices', () => {
    const base = 'policy: { scope: ["10.0.0.0/8"] }\nregions: [{ name: r, cidrs: ["10.0.0.0/8"], appliances: [a] }]\n';
    const input = (extra: string) => `${base}inputs: [{ type: syslog, listen: "udp://127.0.0.1:514"${extra} }]\n`;
    const receiver = (text: string) => {
      const i = parseConfigText(text, 'test.yaml').config.inputs[0];
      return i.type === 'syslog' ? i.udpReceiver : undefined;
    };
    expect(receiver(input(''))).toBe('auto');
    expect(receiver(input(', udpReceiver: dgram'))).toBe('dgram');
    expect(receiver(input(', udpReceiver: native'))).toBe('native');
    const issues = issuesOf(input(', udpReceiver: recvmmsg'));
    expect(issues.map((i) => [i.path, i.message])).toEqual([['inputs[0].udpReceiver', 'udpReceiver must be auto, native or dgram']]);
  });

  it('the documented example validates (with its plug-in directory pointed somewhere real)', () => {
    const text = readFileSync(join(REPO, 'config/onsight.example.yaml'), 'utf8');
    const { config } = parseConfigText(text, 'onsight.example.yaml');
    expect(config.regions.map((r) => r.name)).toEqual(['emea', 'amer']);
    expect(config.regions[1].appliances[0]).toEqual({ name: 'amer-sa-1', maxScans: 2 });
    expect(config.policy.rescanAfter).toBe(30 * 86400);
    expect(config.regions[0].rescanAfter).toBe(14 * 86400);
  });

  it('errors name the key path and the line', () => {
    const issues = issuesOf(['policy:', '  scope: ["10.0.0.0/8", "10.0.0.0/33"]', 'regions:', '  - name: a', '    cidrs: [10.1.0.0/16]', '    appliances: [x]', '    maxConcurrentScans: "two"'].join('\n'));
    expect(issues).toContainEqual({ path: 'policy.scope[1]', line: 2, message: 'not a CIDR or IP address' });
    expect(issues.find((i) => i.path === 'regions[0].maxConcurrentScans')?.line).toBe(7);
  });

  it('unknown keys, bad durations, YAML syntax and a password in the file are refused', () => {
    expect(issuesOf('policy: {scope: [10.0.0.0/8], rescanAfter: 3x}\nregions: [{name: a, cidrs: [10.0.0.0/8], appliances: [x]}]\n')[0].message).toMatch(/not a duration/);
    expect(issuesOf('policy: {scope: [10.0.0.0/8], colour: red}\nregions: [{name: a, cidrs: [10.0.0.0/8], appliances: [x]}]\n')[0].path).toBe('policy');
    expect(issuesOf('policy: [\n')[0].message).toMatch(/^YAML/);
    const q = issuesOf('policy: {scope: [10.0.0.0/8]}\nregions: [{name: a, cidrs: [10.0.0.0/8], appliances: [x]}]\nscanner: {type: qualys, url: "https://q.example", username: u, password: hunter2, optionProfile: p}\n');
    expect(q[0].path).toBe('scanner');
  });

  it('an unknown key is reported on its own line (it was its parent\'s); an alias bomb and an unknown tag are named as YAML', () => {
    const text = ['policy:', '  scope: [10.0.0.0/8]', '  exclde: [10.1.0.0/16]', 'regions: [{name: a, cidrs: [10.0.0.0/8], appliances: [x]}]', '', 'foo: bar', ''].join('\n');
    expect(issuesOf(text).map((i) => [i.path, i.line])).toEqual([['policy', 3], ['', 6]]);
    // a block value starts on the next line: the key's line, not the value's
    const block = ['policy:', '  scope: [10.0.0.0/8]', '  exclde:', '    - 10.1.0.0/16', 'regions: [{name: a, cidrs: [10.0.0.0/8], appliances: [x]}]', ''].join('\n');
    expect(issuesOf(block).map((i) => [i.path, i.line])).toEqual([['policy', 3]]);
    const bomb = 'a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n';
    expect(issuesOf(bomb)[0].message).toMatch(/^YAML: Excessive alias count/);
    const tagged = parseConfigText('policy: {scope: !unknown [10.0.0.0/8]}\nregions: [{name: a, cidrs: [10.0.0.0/8], appliances: [x]}]\n', 't.yaml');
    expect(tagged.warnings.map((w) => [w.line, w.message])).toEqual([[1, expect.stringMatching(/^YAML: Unresolved tag: !unknown/)]]);
  });

  it('scheduler.rangeScans: times are HH:MM, targets name a region and hold ranges; one wholly outside the scope is a warning', () => {
    const base = 'policy: {scope: [10.0.0.0/8], exclude: [10.9.0.0/16]}\nregions:\n  - {name: a, cidrs: [10.0.0.0/16], appliances: [x]}\nscheduler:\n  rangeScans:\n';
    expect(parseConfigText(`${base}    times: ["10:30", "22:00"]\n    targets: {a: [10.0.1.0/24, 10.0.2.1-10.0.2.9]}\n`, 't.yaml').config.scheduler.rangeScans)
      .toMatchObject({ times: ['10:30', '22:00'], targets: { a: ['10.0.1.0/24', '10.0.2.1-10.0.2.9'] }, holdBeforeS: 2700, maxHoldS: 14400 });
    expect(issuesOf(`${base}    times: ["25:00"]\n`)[0]).toMatchObject({ path: 'scheduler.rangeScans.times[0]', line: 6 });
    expect(issuesOf(`${base}    targets: {b: [10.0.1.0/24]}\n`)[0]).toMatchObject({ path: 'scheduler.rangeScans.targets.b', message: expect.stringMatching(/no region is named "b"/) });
    expect(issuesOf(`${base}    targets: {a: [10.0.1.0/24, "10.0.2.9-10.0.2.1"]}\n`)[0]).toMatchObject({ path: 'scheduler.rangeScans.targets.a[1]', line: 6 });
    const outside = parseConfigText(`${base}    targets: {a: [192.168.0.0/24]}\n`, 't.yaml');
    expect(outside.warnings[0].message).toMatch(/wholly outside policy.scope/);
  });

  it('overlapping regions: the same network twice is an error, a nested one a warning', () => {
    const same = issuesOf('policy: {scope: [10.0.0.0/8]}\nregions:\n  - {name: a, cidrs: [10.0.0.0/16], appliances: [x]}\n  - {name: b, cidrs: [10.0.0.0/16], appliances: [y]}\n');
    expect(same[0]).toMatchObject({ path: 'regions[1].cidrs[0]', line: 4 });
    const nested = parseConfigText('policy: {scope: [10.0.0.0/8]}\nregions:\n  - {name: a, cidrs: [10.0.0.0/8], appliances: [x]}\n  - {name: b, cidrs: [10.5.0.0/16], appliances: [y]}\n', 't.yaml');
    expect(nested.warnings[0].message).toMatch(/longest prefix wins/);
  });

  it('`onsight config check` exits 0 / 2 and prints path and line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-cfg-'));
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'policy: {scope: [10.0.0.0/8]}\nregions: [{name: a, cidrs: [10.0.0.0/8], appliances: [x]}]\n');
    expect(execFileSync('node', [CLI, 'config', 'check', '--config', good], { encoding: 'utf8' })).toMatch(/ok/);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'policy: {scope: [10.0.0.0/8]}\nregions: [{name: a, cidrs: [10.0.0.0/8], appliances: [x]}]\ninputs:\n  - {type: file, path: /x, format: nonesuch}\n');
    const r = spawnSync('node', [CLI, 'config', 'check', '--config', bad], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml:4: inputs\[0\]\.format: unknown format "nonesuch"/);
    const missing = spawnSync('node', [CLI, 'config', 'check', '--config', join(dir, 'nope.yaml')], { encoding: 'utf8' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/cannot read config/);
  });

  const base = 'policy: {scope: [10.0.0.0/8]}\nregions:\n  - name: a\n    cidrs: [10.0.0.0/8]\n    appliances: [x]\n';

  it('scan windows with typos (Snu, 26:00, 08:75) are refused with their line', () => {
    // (and a window whose end is its start: 00:00-00:00, meant as all day, never opened)
    for (const w of ['Snu 08:00-18:00', 'Mon-Fri 08:00-26:00', 'Mon 08:75-09:00', 'Mon-Xyz 08:00-09:00', '* 00:00-00:00', 'Mon 09:00-09:00']) {
      const issues = issuesOf(`${base}    scanWindows: ["Mon-Fri 07:00-19:00", "${w}"]\n`);
      expect(issues[0]).toMatchObject({ path: 'regions[0].scanWindows[1]', line: 6 });
    }
    // what is valid stays valid: 24:00 as an end, wrapping windows, day lists
    expect(() => parseConfigText(`${base}    scanWindows: ["Sat,Sun 00:00-24:00", "* 22:00-06:00", "mon-FRI 07:00-19:00"]\n`, 't.yaml')).not.toThrow();
    // an empty list would be "any time" (as none is): a region paused by emptying it was scanned round the clock
    expect(issuesOf(`${base}    scanWindows: []\n`)[0]).toMatchObject({ path: 'regions[0].scanWindows', message: expect.stringMatching(/any time/) });
  });

  it('a global rescanLead of half a window or more is a warning on that window (devices there due at half of it)', () => {
    const text = 'policy: {scope: [10.0.0.0/8], rescanAfter: 30d, rescanLead: 1d, rules: [{cidrs: [10.8.0.0/16], rescanAfter: 1d}, {cidrs: [10.9.0.0/16], rescanAfter: 7d}]}\nregions:\n  - name: a\n    cidrs: [10.0.0.0/8]\n    appliances: [x]\n    rescanAfter: 36h\n';
    const w = parseConfigText(text, 't.yaml').warnings;
    expect(w.map((x) => x.path)).toEqual(['policy.rules[0].rescanAfter', 'regions[0].rescanAfter']);
    expect(w[0].message).toMatch(/policy.rescanLead \(1d\) is half this window \(1d\) or more: devices here are due again 12h after a scan/);
    expect(parseConfigText(text.replace('rescanLead: 1d, ', ''), 't.yaml').warnings).toEqual([]); // the default lead scales with each window
  });

  it('ports out of range and an http.listen without a port are refused', () => {
    expect(issuesOf(`${base}inputs:\n  - {type: syslog, listen: "udp://0.0.0.0:70000"}\n`)[0]).toMatchObject({ path: 'inputs[0].listen', line: 7 });
    expect(issuesOf(`${base}http: {listen: localhost}\n`)[0]).toMatchObject({ path: 'http.listen', line: 6 });
    expect(issuesOf(`${base}http: {listen: "127.0.0.1:99999"}\n`)[0]).toMatchObject({ path: 'http.listen' });
    expect(() => parseConfigText(`${base}http: {listen: "localhost:9321"}\n`, 't.yaml')).not.toThrow();
  });

  it('two listeners on one port are refused with both keys (run failed on EADDRINUSE after config check said ok); a wildcard takes every address', () => {
    const cases: [string, string | undefined][] = [
      [`inputs:\n  - {type: syslog, listen: "tcp://127.0.0.1:19321"}\nhttp: {listen: "127.0.0.1:19321"}\n`, 'http.listen'],
      [`inputs:\n  - {type: syslog, listen: "udp://127.0.0.1:15514"}\n  - {type: syslog, listen: "udp://0.0.0.0:15514"}\n`, 'inputs[1].listen'],
      [`inputs:\n  - {type: http, listen: "[::]:8088", tokens: [{name: a, env: A}]}\n  - {type: syslog, listen: "tls://127.0.0.1:8088", tls: {cert: /c, key: /k}}\n`, 'inputs[1].listen'],
      // distinct: another protocol, another address, port 0 (any free port), the status page disabled
      [`inputs:\n  - {type: syslog, listen: "udp://127.0.0.1:15514"}\n  - {type: syslog, listen: "tcp://127.0.0.1:15514"}\n  - {type: syslog, listen: "tcp://127.0.0.2:15514"}\n`, undefined],
      [`inputs:\n  - {type: syslog, listen: "tcp://127.0.0.1:0"}\n  - {type: syslog, listen: "tcp://0.0.0.0:0"}\n`, undefined],
      [`inputs:\n  - {type: syslog, listen: "tcp://127.0.0.1:9321"}\nhttp: {listen: "127.0.0.1:9321", enabled: false}\n`, undefined],
      // Linux binds 0.0.0.0:P and [::1]:P together (review: this was refused); :: is dual-stack and takes IPv4 too
      [`inputs:\n  - {type: syslog, listen: "udp://0.0.0.0:5514"}\n  - {type: syslog, listen: "udp://[::1]:5514"}\n`, undefined],
      [`inputs:\n  - {type: syslog, listen: "tcp://[::]:5514"}\n  - {type: syslog, listen: "tcp://127.0.0.1:5514"}\n`, 'inputs[1].listen'],
      [`inputs:\n  - {type: syslog, listen: "tcp://[0:0:0:0:0:0:0:0]:5514"}\n  - {type: syslog, listen: "tcp://0.0.0.0:5514"}\n`, 'inputs[1].listen'],
      // localhost binds to 127.0.0.1 or ::1, whichever the resolver gives first: either clashes
      [`inputs:\n  - {type: syslog, listen: "tcp://127.0.0.1:9400"}\nhttp: {listen: "localhost:9400"}\n`, 'http.listen'],
      [`inputs:\n  - {type: syslog, listen: "udp://localhost:5514"}\n  - {type: syslog, listen: "udp://[::1]:5514"}\n`, 'inputs[1].listen'],
      [`inputs:\n  - {type: syslog, listen: "udp://localhost:5514"}\n  - {type: syslog, listen: "udp://127.0.0.2:5514"}\n`, undefined],
    ];
    // the same syslog listen twice is said so, port 0 too
    for (const l of ['udp://127.0.0.1:5514', 'tcp://127.0.0.1:0']) {
      expect(issuesOf(`${base}inputs:\n  - {type: syslog, listen: "${l}"}\n  - {type: syslog, listen: "${l}"}\n`), l).toEqual([expect.objectContaining({ path: 'inputs[1].listen', message: `${l} is configured twice` })]);
    }
    for (const [text, path] of cases) {
      if (!path) {
        expect(() => parseConfigText(base + text, 't.yaml'), text).not.toThrow();
        continue;
      }
      const issue = issuesOf(base + text).find((x) => x.message.includes('same'));
      expect(issue, text).toMatchObject({ path, message: expect.stringMatching(/takes the same (TCP|UDP) port as .* \((inputs\[0\]|inputs\[0\]\.listen)/) });
      expect(issue!.line, text).toBeGreaterThan(0);
    }
  });

  it('one file tailed by two inputs (the same path, a glob that matches a path, a symlink to it) is refused: each line was applied twice', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'onsight-twice-'));
    try {
      writeFileSync(join(tmp, 'a.log'), '');
      symlinkSync(join(tmp, 'a.log'), join(tmp, 'b.log'));
      const head = 'policy: {scope: [10.0.0.0/8]}\nregions: [{name: a, cidrs: [10.0.0.0/8], appliances: [x]}]\n';
      for (const second of [join(tmp, 'a.log'), join(tmp, '*.log')]) {
        const issues = issuesOf(`${head}inputs: [{type: file, path: ${join(tmp, 'a.log')}}, {type: file, path: "${second}"}]\n`);
        expect(issues, second).toEqual([expect.objectContaining({ path: 'inputs[1].path', message: expect.stringMatching(/is also read by inputs\[0\] .*: each of its lines would be applied twice/) })]);
      }
      const linked = parseConfigText(`${head}inputs: [{type: file, path: ${join(tmp, 'a.log')}}, {type: file, path: ${join(tmp, 'b.log')}}]\n`, 't.yaml');
      await expect(checkConfigEnvironment(linked)).rejects.toMatchObject({ issues: [expect.objectContaining({ path: 'inputs[1].path', message: expect.stringMatching(/b\.log is the same file as .*a\.log \(inputs\[0\]\)/) })] });
      // another file beside it is fine
      await checkConfigEnvironment(parseConfigText(`${head}inputs: [{type: file, path: ${join(tmp, 'a.log')}}, {type: file, path: ${join(tmp, 'c.log')}}]\n`, 't.yaml'));
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('a rescan window of 0 (every device due at every pass: a scan loop) and a duration past 100 years are refused, naming the key', () => {
    const issues = issuesOf(`policy: { scope: ["10.0.0.0/8"], rescanAfter: 0 }\nregions: [{ name: a, cidrs: ["10.0.0.0/8"], appliances: [x], rescanAfter: 99999999999999999999d }]\n`);
    expect(issues.map((i) => [i.path, i.message])).toEqual([
      ['policy.rescanAfter', expect.stringMatching(/^must be longer than 0/)],
      ['regions[0].rescanAfter', '99999999999999999999d is longer than 100 years: a typo?'],
    ]);
  });

  it('a region wholly outside the scope, or an exclusion list covering the scope, is a warning', () => {
    // (the scope that no region covers is a warning of its own: test/config-check-scope.test.ts)
    const parse = (text: string, file: string) => {
      const loaded = parseConfigText(text, file);
      return { ...loaded, warnings: loaded.warnings.filter((w) => !w.path.startsWith('policy.scope')) };
    };
    const out = parse('policy: {scope: [10.0.0.0/8]}\nregions:\n  - {name: a, cidrs: [10.1.0.0/16], appliances: [x]}\n  - {name: b, cidrs: [192.168.0.0/16], appliances: [y]}\n', 't.yaml');
    expect(out.warnings.map((w) => [w.path, w.message])).toEqual([['regions[1].cidrs', expect.stringMatching(/region "b" lies wholly outside policy.scope/)]]);
    const excluded = parse('policy: {scope: [10.0.0.0/8], exclude: [0.0.0.0/0]}\nregions:\n  - {name: a, cidrs: [10.1.0.0/16], appliances: [x]}\n', 't.yaml');
    expect(excluded.warnings.map((w) => [w.path, w.message])).toEqual([['policy.exclude', expect.stringMatching(/covers all of policy.scope/)]]);
    expect(parse('policy: {scope: [10.0.0.0/8], exclude: [10.1.5.0/24]}\nregions:\n  - {name: a, cidrs: [10.1.0.0/16], appliances: [x]}\n', 't.yaml').warnings).toEqual([]);
    // a region inside the scope but every address of it excluded, piece by piece
    const pieces = parse('policy: {scope: [10.0.0.0/8], exclude: [10.1.0.0/17, 10.1.128.0/17]}\nregions:\n  - {name: a, cidrs: [10.1.0.0/16], appliances: [x]}\n  - {name: b, cidrs: [10.2.0.0/16], appliances: [y]}\n', 't.yaml');
    expect(pieces.warnings.map((w) => w.path)).toEqual(['regions[0].cidrs']);
    // a scope entry with a zone id these ranges do not read is not judged (it threw, exit 1, no file)
    expect(() => parse('policy: {scope: [10.0.0.0/8, "fe80::1%eth-0"]}\nregions:\n  - {name: a, cidrs: [10.1.0.0/16], appliances: [x]}\n', 't.yaml')).not.toThrow();
  });

  it('the allowed scope of many exclusions is cut in one pass (20,000 of them made validation take seconds)', () => {
    const ex = Array.from({ length: 20_000 }, (_, k) => `10.${(k >> 8) & 255}.${k & 255}.${(k * 7) & 255}`);
    // the same result as cutting one at a time (the old way), on a small list checked address by address
    const small = ['10.0.0.0/30', '10.0.0.6', '10.0.0.8-10.0.0.9', '10.0.0.9-10.0.0.12', '2001:db8::/126', '10.0.0.15'];
    const kept = new Set(expandRanges(allowedRanges(['10.0.0.0/28', '2001:db8::/125'], ['10.0.0.0/8', '2001:db8::/32'], small)));
    const all = [...expandRanges(['10.0.0.0/28']), ...expandRanges(['2001:db8::/125'])];
    const cut = rangeMatcher(small);
    expect(all.filter((ip) => kept.has(ip))).toEqual(all.filter((ip) => !cut(ip)));
    // and the large one: every excluded address is out, the scope's others in
    const left = allowedRanges(['0.0.0.0/0'], ['0.0.0.0/0'], ex);
    const inLeft = rangeMatcher(left);
    expect(ex.slice(0, 500).some(inLeft)).toBe(false);
    expect(inLeft('10.0.0.1') && inLeft('192.168.1.1')).toBe(true);
    expect(rangeSize(left)).toBe(2n ** 32n - BigInt(new Set(ex).size));
  });

  it('requireClientCert without ca is refused, for syslog TLS and the status page (any publicly issued certificate would pass)', () => {
    const tlsInput = (tls: string) => `${base}inputs:\n  - {type: syslog, listen: "tls://0.0.0.0:6514", tls: {${tls}}}\n`;
    expect(issuesOf(tlsInput('cert: /c, key: /k, requireClientCert: true'))[0]).toMatchObject({ path: 'inputs[0].tls.ca', message: expect.stringMatching(/requireClientCert needs ca/) });
    expect(issuesOf(`${base}http: {listen: "0.0.0.0:9321", tls: {cert: /c, key: /k, requireClientCert: true}}\n`)[0]).toMatchObject({ path: 'http.tls.ca', message: expect.stringMatching(/requireClientCert needs ca/) });
    for (const t of ['cert: /c, key: /k, ca: /ca, requireClientCert: true', 'cert: /c, key: /k']) expect(() => parseConfigText(tlsInput(t), 't.yaml'), t).not.toThrow();
  });

  it('a status page beyond loopback without tokens, or with tokens but no TLS, is a warning; credentials in any scanner URL are refused', () => {
    const w = parseConfigText(`${base}http: {listen: "0.0.0.0:9321"}\n`, 't.yaml').warnings;
    expect(w).toEqual([expect.objectContaining({ path: 'http.listen', message: expect.stringMatching(/not loopback and http.tokens is empty/) })]);
    for (const l of ['127.0.0.1:9321', '[::1]:9321', 'localhost:9321', 'http://127.0.0.1:9321']) expect(parseConfigText(`${base}http: {listen: "${l}"}\n`, 't.yaml').warnings, l).toEqual([]);
    expect(parseConfigText(`${base}http: {listen: "[::]:9321"}\n`, 't.yaml').warnings).toHaveLength(1);
    // a name is not an address: 127.example.com may resolve anywhere (it was taken as loopback by its first characters)
    for (const l of ['127.example.com:9321', 'localhost.example:9321', '10.127.0.1:9321']) expect(parseConfigText(`${base}http: {listen: "${l}"}\n`, 't.yaml').warnings, l).toHaveLength(1);
    for (const l of ['127.8.9.10:9321', '[::ffff:127.0.0.1]:9321', 'LOCALHOST:9321']) expect(parseConfigText(`${base}http: {listen: "${l}"}\n`, 't.yaml').warnings, l).toEqual([]);
    // tokens beyond loopback without TLS travel in the clear: said, for the status page and for HTTP inputs
    const tokens = 'tokens: [{name: ops, env: OPS_TOKEN}]';
    expect(parseConfigText(`${base}http: {listen: "0.0.0.0:9321", ${tokens}}\n`, 't.yaml').warnings).toEqual([expect.objectContaining({ path: 'http.listen', line: 6, message: expect.stringMatching(/http.tls is not set: every request carries its token \(http.tokens\) in the clear/) })]);
    expect(parseConfigText(`${base}http: {listen: "0.0.0.0:9321", ${tokens}, tls: {cert: /c, key: /k}}\n`, 't.yaml').warnings).toEqual([]);
    expect(parseConfigText(`${base}http: {listen: "127.0.0.1:9321", ${tokens}}\n`, 't.yaml').warnings).toEqual([]);
    const input = (listen: string, tls = '') => parseConfigText(`${base}inputs:\n  - {type: http, listen: "${listen}", ${tokens}${tls}}\n`, 't.yaml').warnings;
    expect(input('0.0.0.0:8088')).toEqual([expect.objectContaining({ path: 'inputs[0].listen', message: expect.stringMatching(/inputs\[0\].tls is not set: every request carries its token \(inputs\[0\].tokens\)/) })]);
    expect(input('0.0.0.0:8088', ', tls: {cert: /c, key: /k}')).toEqual([]);
    expect(input('127.0.0.1:8088')).toEqual([]);
    const r7 = issuesOf(`${base}scanner: {type: rapid7, url: "https://admin:hunter2@console.example:3780", username: u, passwordEnv: R7, siteId: 1}\n`);
    expect(r7[0]).toMatchObject({ path: 'scanner.url', message: expect.stringMatching(/credentials in the URL/) });
    expect(JSON.stringify(r7)).not.toContain('hunter2');
  });

  it('a syslog listener beyond loopback with no allow list (nor, over TCP/TLS, client certificates) is a warning: anyone who reaches it can forge DHCP and VPN lines', () => {
    const warn = (input: string) => parseConfigText(`${base}inputs:\n  - ${input}\n`, 't.yaml').warnings;
    expect(warn('{type: syslog, listen: "udp://0.0.0.0:514"}')).toEqual([expect.objectContaining({ path: 'inputs[0].listen', line: 7, message: expect.stringMatching(/^udp:\/\/0\.0\.0\.0:514 is not loopback and has no allow list: anyone who can reach it can send lines that onsight takes as DHCP and VPN events .* set allow: \[the CIDRs of your log senders\]$/) })]);
    expect(warn('{type: syslog, listen: "tcp://[::]:601"}')[0].message).toMatch(/has no allow list nor tls.requireClientCert: .*, or TLS with requireClientCert$/);
    expect(warn('{type: syslog, listen: "tls://10.1.2.3:6514", tls: {cert: /c, key: /k}}')).toHaveLength(1);
    expect(warn('{type: syslog, listen: "udp://127.example.com:514"}')).toHaveLength(1);
    for (const quiet of [
      '{type: syslog, listen: "udp://0.0.0.0:514", allow: [10.0.0.0/8]}',
      '{type: syslog, listen: "tls://0.0.0.0:6514", tls: {cert: /c, key: /k, ca: /ca, requireClientCert: true}}',
      '{type: syslog, listen: "udp://127.0.0.1:514"}',
      '{type: syslog, listen: "tcp://[::1]:601"}',
      '{type: syslog, listen: "udp://localhost:514"}',
    ]) expect(warn(quiet), quiet).toEqual([]);
  });

  it('YAML syntax errors carry a line number', () => {
    const issues = issuesOf('policy:\n  scope: [10.0.0.0/8]\nregions:\n  - name: "a\n');
    expect(issues[0].message).toMatch(/^YAML/);
    expect(issues[0].line).toBeGreaterThanOrEqual(4);
  });

  it('config check and run refuse the same things, exit 2 with file:line: FIFO, missing directory, unknown format', () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-cfg-'));
    const fifo = join(dir, 'pipe.log');
    execFileSync('mkfifo', [fifo]);
    // (a lease path is a name, never a glob)
    const globFifo = join(dir, 'fifo[1].leases');
    execFileSync('mkfifo', [globFifo]);
    const cases: [string, RegExp][] = [
      [`inputs:\n  - {type: file, path: "${fifo}"}\n`, /:8: inputs\[0\]\.path: .*not a regular file/],
      [`inputs:\n  - {type: lease, path: "${fifo}", format: dnsmasq}\n`, /:8: inputs\[0\]\.path: cannot read the lease database .*pipe\.log is a FIFO, not a regular file/],
      [`inputs:\n  - {type: lease, path: "${globFifo}", format: dnsmasq}\n`, /:8: inputs\[0\]\.path: cannot read the lease database .*fifo\[1\]\.leases is a FIFO, not a regular file/],
      [`inputs:\n  - {type: file, path: "${join(dir, 'nodir', 'x.log')}"}\n`, /:8: inputs\[0\]\.path: .*directory .* does not exist/],
      [`inputs:\n  - {type: file, path: "${join(dir, 'nodir', '*.log')}"}\n`, /:8: inputs\[0\]\.path: .*directory .* does not exist/],
      [`inputs:\n  - {type: file, path: "${join(dir, 'ok.log')}", format: nonesuch}\n`, /:8: inputs\[0\]\.format: unknown format/],
    ];
    for (const [extra, re] of cases) {
      const file = join(dir, 'c.yaml');
      writeFileSync(file, `state: ${join(dir, 'state.db')}\n${base}${extra}`);
      for (const cmd of [['config', 'check'], ['run']]) {
        const r = spawnSync('node', [CLI, ...cmd, '--config', file], { encoding: 'utf8', timeout: 15_000 });
        expect({ cmd: cmd[0], status: r.status }).toEqual({ cmd: cmd[0], status: 2 });
        expect(r.stderr).toMatch(re);
      }
    }
  }, 90_000); // 8 CLI starts: 31 s at load 8

  it('`parse --zone` refuses an unknown time zone', () => {
    const r = spawnSync('node', [CLI, 'parse', '--format', 'auto', '--zone', 'Mars/Olympus_Mons'], { encoding: 'utf8', input: '' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown time zone "Mars\/Olympus_Mons"/);
  });

  it('a scanner URL of plain http:// beyond loopback is a warning naming scanner.url (the password went in the clear, unsaid); loopback (an emulator) and https are not', () => {
    const q = (url: string) => `${base}scanner: {type: qualys, url: "${url}", username: u, passwordEnv: QPASS, optionProfile: p}\n`;
    const t = (url: string) => `${base}scanner: {type: tenable, url: "${url}", apiKeysEnv: TKEYS}\n`;
    const warned = (text: string) => parseConfigText(text, 'c.yaml').warnings.filter((w) => w.path === 'scanner.url').map((w) => w.message);
    expect(warned(q('http://qualysapi.qualys.eu'))).toEqual([expect.stringMatching(/^plain http:\/\/ to qualysapi\.qualys\.eu: every call carries the scanner's user name and password in the clear/)]);
    expect(warned(t('http://10.1.2.3:8834'))).toEqual([expect.stringMatching(/carries the scanner's API keys in the clear/)]);
    for (const ok of ['https://qualysapi.qualys.eu', 'http://127.0.0.1:18443', 'http://localhost:8080', 'http://[::1]:8443']) expect(warned(q(ok)), ok).toEqual([]);
  });

  it('credentials in scanner.url are refused, without echoing them; doctor never prints them', () => {
    const q = (url: string) => `${base}scanner: {type: qualys, url: "${url}", username: u, passwordEnv: QPASS, optionProfile: p}\n`;
    for (const url of ['https://u:hunter2@qualysapi.qualys.eu', 'https://hunter2@qualysapi.qualys.eu', 'https://qualysapi.qualys.eu/?password=hunter2']) {
      const issues = issuesOf(q(url));
      expect(issues[0]).toMatchObject({ path: 'scanner.url', line: 6 });
      expect(JSON.stringify(issues)).not.toContain('hunter2');
    }
    const dir = mkdtempSync(join(tmpdir(), 'onsight-cfg-'));
    const file = join(dir, 'c.yaml');
    writeFileSync(file, `state: ${join(dir, 's.db')}\n${q('https://u:hunter2@127.0.0.1:1')}`);
    for (const cmd of [['doctor'], ['config', 'check'], ['run']]) {
      const r = spawnSync('node', [CLI, ...cmd, '--config', file], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, QPASS: 'x' } });
      expect(r.status).toBe(2);
      expect(r.stdout + r.stderr).not.toContain('hunter2');
      expect(r.stderr).toMatch(/scanner\.url: .*credentials/);
    }
  });

  it('the example config passes `config check` as shipped, on a host with no /etc/onsight (a fresh install), but for the secret and TLS files it names: read as run reads them', () => {
    const example = join(REPO, 'config/onsight.example.yaml');
    const env = { ...process.env, CREDENTIALS_DIRECTORY: '' };
    const r = spawnSync('node', [CLI, 'config', 'check', '--config', example], { encoding: 'utf8', env });
    expect(r.stderr.replace(/^warning: .*\n/gm, '').replace(/^onsight: /, '').trim().split('\n').map((l) => l.replace(/^[^:]*:\d+: /, ''))).toEqual([
      'scanner.passwordFile: password file /etc/onsight/qualys.pass cannot be read (ENOENT)',
      'inputs[4].tokens[0].file: token "splunk-hf": token file /etc/onsight/hec.token cannot be read (ENOENT)',
      'inputs[2].tls.cert: TLS certificate /etc/onsight/tls/server.crt cannot be read (ENOENT)',
      'inputs[2].tls.key: TLS key /etc/onsight/tls/server.key cannot be read (ENOENT)',
      'inputs[2].tls.ca: TLS CA bundle /etc/onsight/tls/clients-ca.crt cannot be read (ENOENT)',
      'inputs[4].tls.cert: TLS certificate /etc/onsight/tls/server.crt cannot be read (ENOENT)',
      'inputs[4].tls.key: TLS key /etc/onsight/tls/server.key cannot be read (ENOENT)',
    ]);
    expect(r.status).toBe(2);
    // with those files there, it passes (warnings only: the nac token's systemd credential is not checked outside the unit)
    const pair = selfSignedCert();
    if ('skip' in pair) {
      console.log(`skip the example config with its files there: ${pair.skip}`);
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'onsight-example-'));
    try {
      writeFileSync(join(dir, 'qualys.pass'), 'pw\n');
      writeFileSync(join(dir, 'hec.token'), 'a-token-long-enough-1234\n');
      writeFileSync(join(dir, 'server.crt'), pair.cert);
      writeFileSync(join(dir, 'server.key'), pair.key);
      const cfg = join(dir, 'onsight.yaml');
      writeFileSync(cfg, readFileSync(example, 'utf8').replace('/etc/onsight/qualys.pass', join(dir, 'qualys.pass')).replace('/etc/onsight/hec.token', join(dir, 'hec.token'))
        .replaceAll('/etc/onsight/tls/server.crt', join(dir, 'server.crt')).replaceAll('/etc/onsight/tls/server.key', join(dir, 'server.key'))
        .replace('/etc/onsight/tls/clients-ca.crt', join(dir, 'server.crt')));
      const ok = spawnSync('node', [CLI, 'config', 'check', '--config', cfg], { encoding: 'utf8', env });
      expect(ok.stderr.replace(/^warning: .*\n/gm, '')).toBe('');
      expect(ok.stderr).toMatch(/^warning: .*inputs\[4\]\.tokens\[1\]\.credential: systemd credential onsight-nac-token not checked/m);
      expect(ok.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('help asked for exits 0; help shown for a missing subcommand (onsight, onsight config alone, help for no such command) is a usage error, exit 2', () => {
    for (const [args, code] of [[['--help'], 0], [['help'], 0], [['help', 'run'], 0], [['config', '--help'], 0], [[], 2], [['config'], 2], [['state'], 2], [['help', 'nosuch'], 2]] as const) {
      const r = spawnSync('node', [CLI, ...args], { encoding: 'utf8' });
      expect(r.status, args.join(' ') || '(none)').toBe(code);
      expect(r.stdout + r.stderr, args.join(' ')).toMatch(/Usage: onsight/);
    }
  });

  it('`onsight --version` prints the package version; the LICENSE is the Apache-2.0 text package.json names', () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string; license: string };
    for (const flag of ['--version', '-V']) {
      const r = spawnSync('node', [CLI, flag], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe(pkg.version);
    }
    expect(pkg.license).toBe('Apache-2.0');
    const license = readFileSync(join(REPO, 'LICENSE'), 'utf8');
    expect(license).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004/);
    expect(license).toContain('END OF TERMS AND CONDITIONS');
  });
});
