/** The hard scope rule: mapped IPv6 forms of IPv4 match everywhere, and some addresses are never targets. */
import { describe, expect, it } from 'vitest';
import { Policy } from '../src/policy/policy.js';
import ipaddr from 'ipaddr.js';
import { CidrSet, canonicalIp, fastIPv4, parseCidr, parseIp } from '../src/util/ip.js';
import type { BindingView } from '../src/inventory/inventory.js';

function policy(scope: string[], exclude: string[] = []): Policy {
  return new Policy({ scope, exclude, rescanAfter: 86400, rules: [], regions: [{ name: 'r', cidrs: ['0.0.0.0/0', '::/0'] }], timezone: 'UTC' });
}
const binding = (ip: string) => ({ id: 1, ip, identityId: 1, identityKey: `ip:${ip}`, channel: 'dhcp', format: 'x', startAt: 0, lastSeen: 0 }) as unknown as BindingView;

describe('IPv4-mapped IPv6 in scope, exclude and allow lists', () => {
  it('a mapped CIDR is the IPv4 network it names', () => {
    const c = parseCidr('::ffff:10.99.0.0/112')!;
    expect(c.addr.kind()).toBe('ipv4');
    expect(c.bits).toBe(16);
    expect(parseCidr('::ffff:10.1.2.3')!.addr.toString()).toBe('10.1.2.3');
    const set = new CidrSet<true>();
    set.add(parseCidr('::ffff:192.168.0.0/120')!, true);
    expect(set.contains('192.168.0.7')).toBe(true);
    expect(set.contains('::ffff:192.168.0.7')).toBe(true);
    expect(set.contains('192.168.1.7')).toBe(false);
  });

  it('an excluded mapped network is never scanned, in either spelling of the address', () => {
    const p = policy(['10.0.0.0/8'], ['::ffff:10.99.0.0/112']);
    for (const ip of ['10.99.0.5', '::ffff:10.99.0.5', '::ffff:a63:5']) {
      expect(p.allowed(ip)).toBe(false);
      expect(p.evaluate(binding(ip), 0).due).toBe(false);
    }
    expect(p.evaluate(binding('10.99.0.5'), 0).reason).toBe('excluded');
    expect(p.allowed('10.98.0.5')).toBe(true);
    // a plain IPv4 exclude catches the mapped spelling of an address too
    expect(policy(['10.0.0.0/8'], ['10.99.0.0/16']).allowed('::ffff:10.99.0.5')).toBe(false);
  });

  it('only ::ffff:a.b.c.d is IPv4: ::a.b.c.d (IPv4-compatible) and 64:ff9b::a.b.c.d are other, IPv6, addresses', () => {
    // ipaddr.js reads any ::a.b.c.d as mapped: a log line's ::10.0.0.1 became 10.0.0.1, another host, in scope
    expect(canonicalIp('::10.0.0.1')).toBe('::a00:1');
    expect(canonicalIp('64:FF9B::10.0.0.1')).toBe('64:ff9b::a00:1');
    expect(canonicalIp('0:0:0:0:0:FFFF:10.0.0.1')).toBe('10.0.0.1');
    expect(parseIp('::10.0.0.1')?.toString()).toBe('::a00:1');
    expect(parseCidr('::10.0.0.0/104')).toMatchObject({ bits: 104 });
    expect(parseCidr('::10.0.0.0/104')!.addr.kind()).toBe('ipv6');
    const p = policy(['10.0.0.0/8']);
    expect(p.allowed('::10.0.0.1')).toBe(false);
    expect(p.allowed('::ffff:10.0.0.1')).toBe(true);
    expect(policy(['::/0'], ['::10.0.0.0/104']).allowed('10.0.0.1')).toBe(false); // ::/0 holds no IPv4
    expect(policy(['::/0'], ['::10.0.0.0/104']).allowed('::a00:1')).toBe(false);
    expect(policy(['::/0'], ['::10.0.0.0/104']).allowed('::b00:1')).toBe(true);
  });

  it('loopback, broadcast, multicast, link-local and unspecified are refused even with scope 0.0.0.0/0', () => {
    const p = policy(['0.0.0.0/0', '::/0']);
    for (const ip of ['127.0.0.1', '127.9.9.9', '255.255.255.255', '224.0.0.251', '239.1.2.3', '169.254.10.1', '0.0.0.0', '0.1.2.3',
      '::1', '::', 'fe80::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:169.254.0.1']) {
      expect({ ip, allowed: p.allowed(ip) }).toEqual({ ip, allowed: false });
      const v = p.evaluate(binding(ip), 0);
      expect({ ip, due: v.due, reason: v.reason }).toEqual({ ip, due: false, reason: 'out-of-scope' });
    }
    for (const ip of ['10.0.0.1', '8.8.8.8', '2001:db8::1', 'fd00::5']) expect({ ip, allowed: p.allowed(ip) }).toEqual({ ip, allowed: true });
    expect(p.evaluate(binding('127.0.0.1'), 0).detail).toMatch(/loopback/);
  });
});

describe('the dotted-quad fast path (fastIPv4) reads addresses as ipaddr.js does', () => {
  it('agrees with ipaddr.js on canonical, odd and invalid forms; leading zeros (octal to ipaddr.js) are left to ipaddr.js', () => {
    const odd = ['0.0.0.0', '255.255.255.255', '10.1.2.3', '1.2.3', '256.1.1.1', '1.2.3.4.5', '01.2.3.4', '1.2.3.010', ' 1.2.3.4', '1.2.3.4 ',
      '1..2.3', '1.2.3.', '.1.2.3', '0x1.2.3.4', '1.2.3.0004', '1.2.3.-1', '1.2.3.4/8', '１.2.3.4', '::ffff:1.2.3.4', '1.2.3.1000', '999.1.1.1'];
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 256;
    const random = Array.from({ length: 2000 }, () => `${rnd()}.${rnd()}.${rnd()}.${rnd()}`);
    let fast = 0;
    for (const s of [...odd, ...random]) {
      const got = fastIPv4(s);
      let want: string | undefined;
      try {
        want = ipaddr.parse(s).toString();
      } catch {
        want = undefined;
      }
      if (got) {
        fast++;
        expect(got.toString(), s).toBe(want);
        expect(got.toString(), s).toBe(s); // only canonical quads take the fast path
      } else if (want !== undefined && ipaddr.IPv4.isValidFourPartDecimal(s) && !/(^|\.)0\d/.test(s)) {
        throw new Error(`${s}: a canonical quad missed the fast path`);
      }
      // whichever path, the answer is ipaddr.js's (mapped IPv6 as IPv4)
      const p = parseIp(s);
      expect(p?.toString(), s).toBe(want === '::ffff:102:304' ? '1.2.3.4' : want);
    }
    expect(fast).toBe(2000 + 3);
    // the parsers' canonical form takes the same path: a canonical quad is itself, others as before
    for (const s of random) expect(canonicalIp(s)).toBe(s);
    expect(canonicalIp(' 10.1.2.3 ')).toBe('10.1.2.3');
    expect(canonicalIp('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(canonicalIp('256.1.1.1')).toBeUndefined();
    expect(canonicalIp('1.2.3')).toBeUndefined();
  });
});
