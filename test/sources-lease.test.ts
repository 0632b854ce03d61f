/**
 * Lease database inputs through the real daemon, with files written here in each server's format
 * (as the real daemons write them: see test/realworld-dhcp.test.ts for the daemons
 * themselves): malformed and truncated databases get a clear log line and are counted on /metrics,
 * and a truncated snapshot ends nothing; and SIGKILL, again and again while the databases grow
 * (Kea moved aside by its cleanup, dnsmasq rewritten in place), loses and duplicates nothing.
 */
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import Database from '../src/store/sqlite.js';
import { CLI } from './helpers/paths.js';
import { DaemonProcess, freePort, startDaemon } from './helpers/daemon.js';
import { sleep, until } from './helpers/wait.js';

const KEA_HEADER = 'address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context,pool_id\n';
const hex = (n: number) => n.toString(16).padStart(2, '0');
const mac = (net: number, i: number) => `52:54:00:${hex(net)}:${hex((i >> 8) & 255)}:${hex(i & 255)}`;
const ip = (net: number, i: number) => `10.${net}.${(i >> 8) & 255}.${i & 255}`;
const iscTime = (ms: number) => {
  const d = new Date(ms);
  return `${d.getUTCDay()} ${d.getUTCFullYear()}/${hex(d.getUTCMonth() + 1)}/${hex(d.getUTCDate())} ${hex(d.getUTCHours())}:${hex(d.getUTCMinutes())}:${hex(d.getUTCSeconds())}`;
};
const keaRow = (i: number, now: number) => `${ip(51, i)},${mac(51, i)},,3600,${Math.floor(now / 1000) + 3600},1,0,0,host-${i},0,,0\n`;
const iscBlock = (i: number, now: number) => `lease ${ip(52, i)} {\n  starts ${iscTime(now)};\n  ends ${iscTime(now + 3600_000)};\n  cltt ${iscTime(now)};\n  binding state active;\n  next binding state free;\n  hardware ethernet ${mac(52, i)};\n  client-hostname "h-${i}";\n}\n`;
const dnsmasqLine = (i: number, now: number) => `${Math.floor(now / 1000) + 3600} ${mac(53, i)} ${ip(53, i)} d-${i} *\n`;

function db(state: string) {
  return new Database(state, { readonly: true });
}

/** the addresses whose binding is open now, in the daemon's state */
function openIps(state: string): string[] {
  const x = db(state);
  try {
    return (x.prepare('SELECT ip FROM bindings WHERE end_at IS NULL ORDER BY ip').all() as { ip: string }[]).map((r) => r.ip);
  } finally {
    x.close();
  }
}

async function metric(port: number, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => l.startsWith(name + '{') && want.every((w) => l.includes(w)));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('lease databases: malformed and truncated files', () => {
  it('counts malformed records and truncated snapshots, reads the good ones, ends nothing on a partial read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-leasebad-'));
    const now = Date.now();
    const dm = join(dir, 'dnsmasq.leases');
    const kea = join(dir, 'kea-leases4.csv');
    const isc = join(dir, 'dhcpd.leases');
    writeFileSync(dm, dnsmasqLine(1, now) + dnsmasqLine(2, now) + 'garbage line\n' + `${Math.floor(now / 1000) + 60} ${mac(53, 3)} 10.53.0.300 x *\n`);
    writeFileSync(kea, KEA_HEADER + keaRow(1, now) + '10.51.0.2,52:54:00\n' + 'not-an-address,x,,1,2,3,4,5,6,0,\n' + keaRow(3, now));
    // a block cut short by a crash of the writer, then a good one
    writeFileSync(isc, iscBlock(1, now) + `lease ${ip(52, 2)} {\n  starts ${iscTime(now)};\n` + iscBlock(3, now));
    const http = await freePort();
    const d = await startDaemon(`
state: STATE
timezone: UTC
inputs:
  - { type: lease, path: ${dm}, format: dnsmasq, pollMs: 50 }
  - { type: lease, path: ${kea}, format: kea, pollMs: 50 }
  - { type: lease, path: ${isc}, format: isc-dhcpd, pollMs: 50 }
policy: { scope: ["192.0.2.0/24"] }
regions: [{ name: r, cidrs: ["192.0.2.0/24"], appliances: [a] }]
http: { listen: "127.0.0.1:${http}" }
`);
    try {
      const ips = () => openIps(join(d.dir, 'state.db'));
      await until(() => ips().length === 6, 10_000, 'the good leases');
      expect(ips()).toEqual(['10.51.0.1', '10.51.0.3', '10.52.0.1', '10.52.0.3', '10.53.0.1', '10.53.0.2']);
      expect(await metric(http, 'onsight_input_lines_dropped_total', { input: `lease:${dm}`, reason: 'malformed' })).toBe(2);
      expect(await metric(http, 'onsight_input_lines_dropped_total', { input: `lease:${kea}`, reason: 'malformed' })).toBe(2);
      expect(await metric(http, 'onsight_input_lines_dropped_total', { input: `lease:${isc}`, reason: 'malformed' })).toBe(1);
      expect(d.logs.some((l) => /malformed record skipped/.test(l.msg) && String(l.msg).includes(isc))).toBe(true);

      // dnsmasq caught mid-rewrite (the last line has no newline yet, lease 2 not written yet):
      // lease 4 is taken, nothing is ended
      writeFileSync(dm, dnsmasqLine(4, now) + dnsmasqLine(1, now).trimEnd());
      await until(() => ips().includes('10.53.0.4'), 10_000, 'the new lease from a partial read');
      await sleep(300);
      expect(ips()).toContain('10.53.0.2');
      // counted and said once while it stays so (once a poll, for ever, before)
      expect(await metric(http, 'onsight_input_lines_dropped_total', { input: `lease:${dm}`, reason: 'truncated' })).toBe(1);
      expect(d.logs.filter((l) => /ends without a newline/.test(l.msg)).length).toBe(1);
      // the complete file: lease 2 was released
      writeFileSync(dm, dnsmasqLine(1, now) + dnsmasqLine(4, now));
      await until(() => !ips().includes('10.53.0.2'), 10_000, 'the release');
    } finally {
      expect(await d.stop()).toBe(0);
    }
  }, 30_000);
});

describe('lease databases that are no regular file, too busy, or beside unreadable compacted files', () => {
  it('a FIFO or a device at the path blocks neither the input nor SIGTERM; a Kea .1 that is a directory is passed over, .2 read; a file rewritten 8 times a second is still read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-leaseodd-'));
    const now = Date.now();
    // (regular at the start: config check and run refuse such paths; they become so while it runs)
    const fifo = join(dir, 'fifo.leases');
    writeFileSync(fifo, '');
    const zero = join(dir, 'zero.leases');
    writeFileSync(zero, '');
    const kea = join(dir, 'kea-leases4.csv');
    writeFileSync(kea, KEA_HEADER + keaRow(1, now));
    mkdirSync(`${kea}.1`);
    writeFileSync(`${kea}.2`, KEA_HEADER + keaRow(2, now) + keaRow(3, now));
    const busy = join(dir, 'busy.leases');
    writeFileSync(busy, '');
    const http = await freePort();
    const d = await startDaemon(`
state: STATE
timezone: UTC
inputs:
  - { type: lease, path: ${fifo}, format: dnsmasq, pollMs: 50 }
  - { type: lease, path: ${zero}, format: dnsmasq, pollMs: 50 }
  - { type: lease, path: ${kea}, format: kea, pollMs: 50 }
  - { type: lease, path: ${busy}, format: dnsmasq, pollMs: 50 }
policy: { scope: ["192.0.2.0/24"] }
regions: [{ name: r, cidrs: ["192.0.2.0/24"], appliances: [a] }]
http: { listen: "127.0.0.1:${http}" }
`);
    let rewrites: NodeJS.Timeout | undefined;
    try {
      const ips = () => openIps(join(d.dir, 'state.db'));
      await d.waitFor((l) => String(l.msg).startsWith('onsight running'), 10_000);
      rmSync(fifo);
      execFileSync('mkfifo', [fifo]);
      rmSync(zero);
      symlinkSync('/dev/zero', zero);
      await until(() => ['10.51.0.1', '10.51.0.2', '10.51.0.3'].every((a) => ips().includes(a)), 10_000, 'the live journal and .2');
      expect(d.logs.some((l) => String(l.msg).includes(`${kea}.1 (leases compacted out of the journal) cannot be read, passed over`))).toBe(true);
      for (const p of [fifo, zero]) await until(async () => (await metric(http, 'onsight_input_events_total', { input: `lease:${p}`, event: 'readError' })) >= 1, 5000, `a read error of ${p}`);
      expect(d.logs.some((l) => String(l.err?.message ?? '').includes('is a named pipe (FIFO), not a regular file'))).toBe(true);
      // a server rewriting its file in place 8 times a second, one lease more each time
      let n = 0;
      rewrites = setInterval(() => {
        n++;
        writeFileSync(busy, Array.from({ length: n }, (_, i) => dnsmasqLine(i + 1, now)).join(''));
      }, 125);
      await until(() => ips().some((a) => a.startsWith('10.53.')), 5000, 'a lease of the busy file while it is busy');
    } finally {
      clearInterval(rewrites);
      expect(await d.stop()).toBe(0);
    }
  }, 40_000);
});

describe('lease databases under SIGKILL', () => {
  it('Kea (appended, moved aside by LFC), ISC (appended) and dnsmasq (rewritten): 0 lost, 0 applied twice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'onsight-leasecrash-'));
    const state = join(dir, 'state.db');
    const kea = join(dir, 'kea-leases4.csv');
    const isc = join(dir, 'dhcpd.leases');
    const dm = join(dir, 'dnsmasq.leases');
    writeFileSync(kea, KEA_HEADER);
    writeFileSync(isc, '# The format of this file is documented in the dhcpd.leases(5) manual page.\nauthoring-byte-order little-endian;\n\n');
    writeFileSync(dm, '');
    writeFileSync(join(dir, 'onsight.yaml'), `
state: ${state}
timezone: UTC
inputs:
  - { type: lease, path: ${kea}, format: kea, pollMs: 20 }
  - { type: lease, path: ${isc}, format: isc-dhcpd, pollMs: 20 }
  - { type: lease, path: ${dm}, format: dnsmasq, pollMs: 20 }
policy: { scope: ["192.0.2.0/24"] }
regions: [{ name: r, cidrs: ["192.0.2.0/24"], appliances: [a] }]
http: { enabled: false }
`);
    const start = () => new DaemonProcess(spawn(process.execPath, [CLI, 'run', '--config', join(dir, 'onsight.yaml')], {
      cwd: dir, env: { ...process.env, ONSIGHT_LOG_JSON: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
    }), dir);
    let n = 0;
    let stop = false;
    let lfc = 0;
    const dmLines: string[] = [];
    const writer = (async () => {
      while (!stop && n < 1500) {
        const now = Date.now();
        let k = '';
        let i = '';
        for (let j = 0; j < 10; j++, n++) {
          k += keaRow(n, now);
          i += iscBlock(n, now);
          dmLines.push(dnsmasqLine(n, now));
        }
        appendFileSync(kea, k);
        appendFileSync(isc, i);
        writeFileSync(dm, dmLines.join('')); // dnsmasq rewrites the whole file
        if (n % 500 === 0 && !existsSync(`${kea}.2`)) {
          // Kea's LFC: the live file is moved to .2 and a new one started
          renameSync(kea, `${kea}.2`);
          writeFileSync(kea, KEA_HEADER);
          lfc++;
        }
        await sleep(30);
      }
    })();
    let kills = 0;
    for (; kills < 6; kills++) {
      const d = start();
      await sleep(500 + ((kills * 173) % 500));
      d.child.kill('SIGKILL');
      await d.exit;
    }
    await writer;
    stop = true;
    const last = start();
    await last.waitFor((e) => String(e.msg).startsWith('onsight running'), 15_000);
    const count = () => {
      if (!existsSync(state)) return 0;
      const x = db(state);
      try {
        return (x.prepare('SELECT count(*) AS c FROM sightings').get() as { c: number }).c;
      } finally {
        x.close();
      }
    };
    await until(() => count() >= 3 * n, 30_000, 'every lease', 100).catch(() => undefined);
    await sleep(500);
    expect(await last.stop()).toBe(0);
    const x = db(state);
    const per = x.prepare(`SELECT substr(ip, 1, 6) AS net, count(*) AS sightings, count(DISTINCT ip) AS ips FROM sightings GROUP BY net ORDER BY net`).all() as { net: string; sightings: number; ips: number }[];
    const renewals = x.prepare(`SELECT substr(ip, 1, 6) AS net, sum(renewals) AS r FROM bindings GROUP BY net ORDER BY net`).all() as { net: string; r: number }[];
    const keaIps = new Set((x.prepare("SELECT ip FROM sightings WHERE ip LIKE '10.51.%'").all() as { ip: string }[]).map((r) => r.ip));
    const missing: number[] = [];
    for (let i = 0; i < n; i++) if (!keaIps.has(ip(51, i))) missing.push(i);
    if (missing.length) console.log(`kea missing: ${missing.length}, from ${missing[0]} to ${missing[missing.length - 1]}`, last.logs.filter((l) => /rotat|resum|checkpoint/i.test(l.msg)).map((l) => l.msg));
    x.close();
    console.log(`lease crash: ${n} leases per database, ${kills} SIGKILLs, ${lfc} LFC moves; stored ${JSON.stringify(per)}; renewals ${JSON.stringify(renewals)}`);
    expect(per).toEqual([{ net: '10.51.', sightings: n, ips: n }, { net: '10.52.', sightings: n, ips: n }, { net: '10.53.', sightings: n, ips: n }]);
    // a lease read twice would be a renewal of the same binding
    expect(renewals.map((r) => r.r)).toEqual([0, 0, 0]);
  }, 120_000);
});
