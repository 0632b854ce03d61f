/** Cluster nodes' scope and exclusions: another live node's lists narrow this node's policy, never widen it. */
import { describe, expect, it } from 'vitest';
import { Policy, peerPolicyProblem } from '../src/policy/policy.js';
import { rangeMatcher } from '../src/util/ip-ranges.js';
import type { BindingView } from '../src/inventory/inventory.js';

function policy(scope: string[], exclude: string[] = []): Policy {
  return new Policy({ scope, exclude, rescanAfter: 86400, rules: [], regions: [{ name: 'r', cidrs: ['0.0.0.0/0', '::/0'] }], timezone: 'UTC' });
}
const binding = (ip: string) => ({ id: 1, ip, identityId: 1, identityKey: `ip:${ip}`, channel: 'dhcp', format: 'x', startAt: 0, lastSeen: 0 }) as unknown as BindingView;

describe('Policy.withPeers', () => {
  const own = policy(['10.0.0.0/8'], ['10.99.0.0/16']);

  it("an address a peer excludes or holds outside its scope is refused, and the decision names that node", () => {
    const p = own.withPeers([{ node: 'b', scope: ['10.0.0.0/8'], exclude: ['10.20.7.7'] }, { node: 'c', scope: ['10.20.0.0/16', '10.30.0.0/16'], exclude: [] }]);
    expect(p.allowed('10.20.7.7')).toBe(false);
    expect(p.allowed('10.20.7.8')).toBe(true);
    expect(p.allowed('10.40.0.1')).toBe(false); // outside c's scope
    expect(p.peerNodes).toEqual(['b', 'c']);
    const ex = p.evaluate(binding('10.20.7.7'), 0);
    expect(ex).toMatchObject({ due: false, reason: 'excluded' });
    expect(ex.detail).toContain("node b's policy excludes 10.20.7.7");
    expect(ex.detail).toContain("cluster nodes' policies differ");
    const out = p.evaluate(binding('10.40.0.1'), 0);
    expect(out).toMatchObject({ due: false, reason: 'out-of-scope' });
    expect(out.detail).toContain("outside node c's policy.scope");
    expect(p.evaluate(binding('10.20.7.8'), 0)).toMatchObject({ due: true, reason: 'due' });
    // this node's own refusals keep their own words
    expect(p.evaluate(binding('10.99.0.1'), 0).detail).toBe('10.99.0.1 is excluded by 10.99.0.0/16');
    // the policy it came from is unchanged
    expect(own.allowed('10.20.7.7')).toBe(true);
    expect(own.allowed('10.40.0.1')).toBe(true);
  });

  it('a peer with a wider scope or fewer exclusions widens nothing', () => {
    const p = own.withPeers([{ node: 'b', scope: ['0.0.0.0/0', '::/0'], exclude: [] }]);
    for (const ip of ['11.0.0.1', '10.99.0.1', '10.99.255.255', '192.168.1.1', '2001:db8::1', '127.0.0.1']) expect(p.allowed(ip)).toBe(false);
    expect(p.allowed('10.1.2.3')).toBe(true);
    expect(p.evaluate(binding('11.0.0.1'), 0).detail).toBe('11.0.0.1 is outside policy.scope');
    expect(p.allowedRanges(['10.98.255.0/24', '10.99.0.0/24', '11.0.0.0/24'])).toEqual(own.allowedRanges(['10.98.255.0/24', '10.99.0.0/24', '11.0.0.0/24']));
    expect(p.allowedRanges(['10.98.255.0/24', '10.99.0.0/24', '11.0.0.0/24'])).toEqual(['10.98.255.0-10.98.255.255']);
  });

  it("range runs are clipped by each peer's scope and exclusions in turn", () => {
    const mine = policy(['10.20.7.0/24'], ['10.20.7.0/28']);
    expect(mine.allowedRanges(['10.20.7.0/24'])).toEqual(['10.20.7.16-10.20.7.255']);
    const p = mine.withPeers([
      { node: 'b', scope: ['10.0.0.0/8'], exclude: ['10.20.7.128/25'] },
      { node: 'c', scope: ['10.20.7.0/26', '10.20.7.200'], exclude: ['10.20.7.40/31'] },
    ]);
    expect(p.allowedRanges(['10.20.7.0/24'])).toEqual(['10.20.7.16-10.20.7.39', '10.20.7.42-10.20.7.63']);
    // a peer leaving nothing: nothing
    expect(mine.withPeers([{ node: 'd', scope: ['10.30.0.0/16'], exclude: [] }]).allowedRanges(['10.20.7.0/24'])).toEqual([]);
  });

  it('allowed and allowedRanges agree, address by address, and equal the AND of every node alone', () => {
    const peers = [
      { node: 'b', scope: ['10.20.0.0/22'], exclude: ['10.20.1.0/25', '10.20.2.7'] },
      { node: 'c', scope: ['10.0.0.0/8'], exclude: ['10.20.3.192/26'] },
    ];
    const p = own.withPeers(peers);
    const inRanges = rangeMatcher(p.allowedRanges(['10.20.0.0/21']));
    const alone = peers.map((x) => policy(x.scope, x.exclude));
    let allowed = 0;
    for (let n = 0; n < 8 * 256; n++) {
      const ip = `10.20.${n >> 8}.${n & 255}`;
      const want = own.allowed(ip) && alone.every((a) => a.allowed(ip));
      expect(p.allowed(ip), ip).toBe(want);
      expect(inRanges(ip), ip).toBe(want);
      expect(p.evaluate(binding(ip), 0).due, ip).toBe(want);
      if (want) allowed++;
    }
    expect(allowed).toBe(4 * 256 - 128 - 1 - 64);
  });

  it("a peer's list that does not parse is refused, naming the node, the key and the entry", () => {
    expect(peerPolicyProblem({ node: 'b', scope: ['10.0.0.0/8'], exclude: ['10.0.0.1', 'nonsense'] })).toBe('node b\'s policy.exclude[1] ("nonsense") is not a CIDR or IP address');
    expect(peerPolicyProblem({ node: 'b', scope: 'x' as unknown as string[], exclude: [] })).toBe("node b's policy.scope is not a list");
    expect(peerPolicyProblem({ node: 'b', scope: ['10.0.0.0/8'], exclude: [] })).toBeUndefined();
    expect(() => own.withPeers([{ node: 'b', scope: ['10.0.0.0/8'], exclude: [7 as unknown as string] }])).toThrow("node b's policy.exclude[0] (7)");
  });
});
