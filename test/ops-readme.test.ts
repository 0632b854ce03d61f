/**
 * The README's configuration snippets stay valid: the rsyslog ones pass `rsyslogd -N1` (Debian
 * packages `rsyslog`, `rsyslog-gnutls`; skipped with a printed reason without them), the Kea
 * logger snippet is JSON, the quick start is exactly two commands, every metric the README lists
 * is one /metrics serves.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from './helpers/paths.js';
import { CollectSink } from './helpers/sink.js';
import { startSyslogInput } from '../src/sources/index.js';
import { silentLogger } from '../src/log.js';

const README = readFileSync(join(REPO, 'README.md'), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'onsight-readme-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** fenced blocks under a heading (up to the next heading of the same or a higher level) */
function blocks(heading: string): { lang: string; text: string }[] {
  const start = README.indexOf(heading);
  expect(start, heading).toBeGreaterThanOrEqual(0);
  const level = /^#+/.exec(heading)![0].length;
  const lines = README.slice(start + heading.length).split('\n');
  let fenced = false;
  let end = lines.length;
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trimStart().startsWith('```')) fenced = !fenced;
    else if (!fenced && new RegExp(`^#{1,${level}} `).test(lines[i])) {
      end = i;
      break;
    }
  }
  const section = lines.slice(0, end).join('\n');
  return [...section.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], text: m[2].replace(/^ {2}/gm, '') }));
}

const rsyslogd = spawnSync('rsyslogd', ['-v'], { encoding: 'utf8' });
const hasRsyslog = !rsyslogd.error && rsyslogd.status === 0;
const hasGtls = hasRsyslog && ['/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so', '/usr/lib/aarch64-linux-gnu/rsyslog/lmnsd_gtls.so', '/usr/lib/rsyslog/lmnsd_gtls.so'].some(existsSync);
if (!hasRsyslog) console.log('SKIP README rsyslog snippets: rsyslogd is not installed (apt-get install rsyslog rsyslog-gnutls)');
else if (!hasGtls) console.log('SKIP README rsyslog TLS snippet: rsyslog-gnutls is not installed');

function validate(conf: string): { ok: boolean; out: string } {
  const f = join(dir, `rs-${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(f, `global(workDirectory="${dir}")\n${conf}`);
  const r = spawnSync('rsyslogd', ['-N1', '-f', f], { encoding: 'utf8' });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  return { ok: r.status === 0 && !/error|warning/i.test(out.replace(/End of config validation run/g, '')), out };
}

describe('README snippets', () => {
  it('the quick start is exactly two commands', () => {
    const b = blocks('## Quick start')[0];
    expect(b.lang).toBe('sh');
    expect(b.text.trim().split('\n')).toEqual([
      'npm ci && npm start      # the daemon on the embedded default',
      'npm ci && npm test       # the tests',
    ]);
  });

  it.runIf(hasRsyslog)('rsyslog: the TCP forwarding rule and the dhcpd / dnsmasq facility rules pass rsyslogd -N1', () => {
    const [tcp] = blocks('### rsyslog (relay from any Linux box)');
    const r = validate(tcp.text);
    expect(r.ok, r.out).toBe(true);
    const dhcp = blocks('### DHCP servers');
    const rules = [...README.matchAll(/`(local\d\.\* @@\(o\)onsight\.example\.net:\d+)`/g)].map((m) => m[1]);
    expect(rules.length).toBe(2);
    const r2 = validate(rules.join('\n') + '\n');
    expect(r2.ok, r2.out).toBe(true);
    expect(JSON.parse(`{${dhcp.find((b) => b.lang === 'json')!.text}}`)).toMatchObject({ loggers: [{ name: 'kea-dhcp4' }] });
  });

  it.runIf(hasRsyslog)('rsyslog: the README filter forwards what Debian daemons log as (ovpn-NAME, charon-systemd …) and nothing else', async () => {
    const [tcp] = blocks('### rsyslog (relay from any Linux box)');
    const sink = new CollectSink();
    const h = await startSyslogInput({ listen: 'tcp://127.0.0.1:0', format: 'auto', maxMessageBytes: 65536, idleTimeoutS: 300, maxConnections: 10, udpRecvBufferBytes: 1 << 20 }, sink, silentLogger());
    const d = mkdtempSync(join(dir, 'fwd-'));
    // program names as Debian's packages log them: isc-dhcp-server, kea, dnsmasq, openvpn@NAME (--daemon ovpn-NAME),
    // openvpn-server@NAME, strongswan-starter (charon) and strongswan (charon-systemd); sshd must not pass
    const programs = ['dhcpd', 'kea-dhcp4', 'dnsmasq-dhcp', 'ovpn-office', 'openvpn', 'charon', 'charon-systemd', 'sshd'];
    const inputs = programs.map((p) => {
      writeFileSync(join(d, `${p}.log`), `hello from ${p}\n`);
      return `input(type="imfile" File="${d}/${p}.log" Tag="${p}:")`;
    }).join('\n');
    const rule = tcp.text.replace('target="onsight.example.net" port="601"', `target="127.0.0.1" port="${h.address!.port}"`);
    expect(rule).not.toBe(tcp.text);
    writeFileSync(join(d, 'rsyslog.conf'), `global(workDirectory="${d}")\nmodule(load="imfile")\n${inputs}\n${rule}`);
    const proc = spawn('rsyslogd', ['-n', '-f', join(d, 'rsyslog.conf'), '-i', join(d, 'pid')], { stdio: 'ignore' });
    try {
      const t0 = Date.now();
      while (sink.lines.length < programs.length - 1 && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      proc.kill('SIGTERM');
      await h.close();
    }
    const got = sink.lines.map((l) => /hello from (\S+)/.exec(l.text)?.[1]).sort();
    expect(got).toEqual(programs.filter((p) => p !== 'sshd').sort());
  }, 30_000);

  it.runIf(hasGtls)('rsyslog: the TLS snippet passes rsyslogd -N1 (with throwaway certificate files)', () => {
    const tls = blocks('### rsyslog (relay from any Linux box)')[1];
    const key = join(dir, 'relay.key');
    const crt = join(dir, 'relay.crt');
    const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-subj', '/CN=relay', '-days', '1'], { encoding: 'utf8' });
    if (gen.status !== 0) return console.log('SKIP TLS snippet: openssl is not installed');
    const conf = tls.text.replace('/etc/rsyslog.d/onsight-ca.pem', crt).replace('/etc/rsyslog.d/relay.crt', crt).replace('/etc/rsyslog.d/relay.key', key);
    const r = validate(conf);
    expect(r.ok, r.out).toBe(true);
  });

  it('every metric the README lists is served (names checked against src/http/metrics.ts)', () => {
    const src = readFileSync(join(REPO, 'src', 'http', 'metrics.ts'), 'utf8');
    const served = new Set([...src.matchAll(/family\('(onsight_[a-z_]+)'/g)].map((m) => m[1]));
    const table = README.slice(README.indexOf('| metric | type | labels |'));
    const listed = new Set<string>();
    for (const row of table.split('\n').filter((l) => l.startsWith('| `onsight_'))) {
      let prefix = '';
      for (const m of row.split('|')[1].matchAll(/`([a-z_]+)`/g)) {
        const name = m[1].startsWith('onsight_') ? m[1] : prefix + m[1].replace(/^_/, '');
        if (m[1].startsWith('onsight_')) prefix = m[1].replace(/[a-z]+$/, '');
        listed.add(name);
      }
    }
    expect([...listed].filter((n) => !served.has(n))).toEqual([]);
    expect([...served].filter((n) => !listed.has(n))).toEqual([]);
  });
});
