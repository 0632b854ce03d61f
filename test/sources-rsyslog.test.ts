/**
 * A private rsyslogd (Debian packages `rsyslog`, and `rsyslog-gnutls` for TLS) reads a file with
 * imfile and forwards it with omfwd to our listeners: TCP octet-counted (RFC 5424 template), TCP
 * LF-framed (traditional forward format), and TLS with mutual authentication (gtls, octet-counted).
 * Every line must arrive intact on each.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSyslogInput } from '../src/sources/index.js';
import type { InputHandle, LineSink, RawLine, SyslogInputOptions } from '../src/sources/types.js';
import { parseSyslog } from '../src/parsers/syslog-header.js';
import { silentLogger } from '../src/log.js';
import { sleep } from './helpers/wait.js';

const rsyslogd = ['/usr/sbin/rsyslogd', '/sbin/rsyslogd'].find((p) => existsSync(p));
const gtls = ['/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so', '/usr/lib/aarch64-linux-gnu/rsyslog/lmnsd_gtls.so', '/usr/lib/rsyslog/lmnsd_gtls.so'].some((p) => existsSync(p));
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
if (!rsyslogd) console.log('SKIP rsyslog forwarding tests: rsyslogd not found (Debian package rsyslog: apt-get install -y rsyslog)');
else if (!gtls) console.log('SKIP rsyslog TLS forwarding: lmnsd_gtls not found (Debian package rsyslog-gnutls)');
else if (!hasOpenssl) console.log('SKIP rsyslog TLS forwarding: openssl CLI not found');

class CollectSink implements LineSink {
  lines: RawLine[] = [];
  push(line: RawLine): boolean {
    this.lines.push(line);
    return true;
  }
  onDrain(cb: () => void): void {
    setImmediate(cb);
  }
}

function opts(listen: string, extra: Partial<SyslogInputOptions> = {}): SyslogInputOptions {
  return { listen, format: 'auto', maxMessageBytes: 65536, idleTimeoutS: 300, maxConnections: 100, udpRecvBufferBytes: 1 << 20, ...extra };
}

let dir: string | undefined;
let proc: ChildProcess | undefined;
const handles: InputHandle[] = [];
afterAll(async () => {
  // rsyslogd writes its queue files into the work directory as it shuts down: removed once it has exited
  const exited = proc && proc.exitCode === null && proc.signalCode === null ? new Promise<void>((resolve) => proc!.once('exit', () => resolve())) : undefined;
  proc?.kill('SIGTERM');
  for (const h of handles) await h.close();
  if (exited) await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
});

describe.runIf(rsyslogd)('rsyslog omfwd → our listeners', () => {
  it('forwards every line intact over TCP (octet counted and LF) and TLS (mutual auth)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'onsight-rsyslog-'));
    const d = dir;
    mkdirSync(join(d, 'work'));
    const withTls = gtls && hasOpenssl;
    if (withTls) {
      const ossl = (...a: string[]) => execFileSync('openssl', a, { cwd: d, stdio: 'pipe' });
      ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=test-ca');
      for (const [n, ext] of [['server', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'], ['client', 'subjectAltName=DNS:rsyslog-client\nextendedKeyUsage=clientAuth\n']]) {
        ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${n}.key`, '-out', `${n}.csr`, '-subj', `/CN=${n === 'server' ? 'localhost' : 'rsyslog-client'}`);
        writeFileSync(join(d, `${n}.ext`), ext);
        ossl('x509', '-req', '-in', `${n}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${n}.crt`, '-days', '2', '-extfile', `${n}.ext`);
      }
    }
    const sinks = { oc: new CollectSink(), lf: new CollectSink(), tls: new CollectSink() };
    const oc = await startSyslogInput(opts('tcp://127.0.0.1:0'), sinks.oc, silentLogger());
    const lf = await startSyslogInput(opts('tcp://127.0.0.1:0'), sinks.lf, silentLogger());
    handles.push(oc, lf);
    let tls: InputHandle | undefined;
    if (withTls) {
      tls = await startSyslogInput(opts('tls://127.0.0.1:0', {
        tls: { cert: join(d, 'server.crt'), key: join(d, 'server.key'), ca: join(d, 'ca.crt'), requireClientCert: true },
      }), sinks.tls, silentLogger());
      handles.push(tls);
    }

    const lines = [
      'DHCPACK on 10.20.30.40 to 52:54:00:12:34:56 (laptop-17) via eth0',
      'héllo wörld ∂ UTF-8 survives',
      '[brackets] "quotes" and = signs',
      ...Array.from({ length: 200 }, (_, i) => `seq ${i} ${'p'.repeat(i * 7)}`),
    ];
    writeFileSync(join(d, 'in.log'), lines.join('\n') + '\n');
    const conf = `
global(workDirectory="${d}/work" maxMessageSize="64k"
${withTls ? `  DefaultNetstreamDriverCAFile="${d}/ca.crt" DefaultNetstreamDriverCertFile="${d}/client.crt" DefaultNetstreamDriverKeyFile="${d}/client.key"` : ''})
module(load="imfile")
input(type="imfile" File="${d}/in.log" Tag="dhcpd:" Facility="daemon" Severity="info" ruleset="fwd")
ruleset(name="fwd") {
  action(type="omfwd" target="127.0.0.1" port="${oc.address!.port}" protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
  action(type="omfwd" target="127.0.0.1" port="${lf.address!.port}" protocol="tcp" template="RSYSLOG_ForwardFormat")
${withTls ? `  action(type="omfwd" target="127.0.0.1" port="${tls!.address!.port}" protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format"
         StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost")` : ''}
}
`;
    writeFileSync(join(d, 'rsyslog.conf'), conf);
    const check = spawnSync(rsyslogd!, ['-N1', '-f', join(d, 'rsyslog.conf')], { encoding: 'utf8' });
    expect(check.status, check.stderr + check.stdout).toBe(0);
    let stderr = '';
    proc = spawn(rsyslogd!, ['-n', '-f', join(d, 'rsyslog.conf'), '-i', join(d, 'rsyslogd.pid')], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stderr!.on('data', (b) => (stderr += b));
    proc.stdout!.on('data', (b) => (stderr += b));

    const want = lines.length;
    const t0 = Date.now();
    while (Date.now() - t0 < 15_000) {
      if (sinks.oc.lines.length >= want && sinks.lf.lines.length >= want && (!withTls || sinks.tls.lines.length >= want)) break;
      await sleep(50);
    }
    await sleep(200);
    const msgs = (s: CollectSink) => s.lines.map((l) => parseSyslog(l.text, { receivedAt: l.receivedAt, zone: 'UTC' }));
    const diag = `rsyslogd output:\n${stderr}\ncounters oc=${JSON.stringify(oc.counters())} lf=${JSON.stringify(lf.counters())} tls=${JSON.stringify(tls?.counters())}`;
    for (const [name, sink] of Object.entries(sinks)) {
      if (name === 'tls' && !withTls) continue;
      const m = msgs(sink);
      expect(m.map((x) => x.msg), `${name}: ${diag}`).toEqual(lines);
      expect(m.every((x) => x.appName === 'dhcpd'), name).toBe(true);
      expect(m.every((x) => x.format === (name === 'lf' ? 'rfc3164' : 'rfc5424')), name).toBe(true);
    }
    for (const h of handles) expect(Object.keys(h.counters().dropped), h.name).toEqual([]);
    console.log(`rsyslog forwarded ${want} lines intact over tcp octet-counted, tcp LF${withTls ? ' and TLS (mutual auth, gtls)' : ''}`);
  }, 40_000);
});
