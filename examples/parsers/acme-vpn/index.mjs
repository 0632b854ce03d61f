/**
 * A worked example of a user parser plug-in for onsight: the (fictional) ACME VPN concentrator.
 *
 * Plain JavaScript, no imports from onsight. Put this folder (or a single .mjs/.js file) in the
 * directory named by `parsers: { directory: ... }` in the onsight config; `onsight formats` then
 * lists "acme-vpn" and `onsight parse --format acme-vpn` (or `auto`) uses it.
 *
 * The log lines look like this (syslog tag `acme-vpn`):
 *   <134>Nov 24 10:00:00 vpn1 acme-vpn[311]: session=4711 event=connect user=jdoe client=203.0.113.9 assigned=10.77.0.15
 *   <134>Nov 24 11:00:00 vpn1 acme-vpn[311]: session=4711 event=disconnect user=jdoe client=203.0.113.9 duration=3600
 * The disconnect line does not repeat the assigned address, so the parser remembers it per session.
 */

/** Split `k=v k2=v2` into a Map with one linear scan (no regular expression over the line). */
function pairs(text, max = 64) {
  const out = new Map();
  let i = 0;
  while (i < text.length && out.size < max) {
    while (text[i] === ' ') i++;
    const start = i;
    while (i < text.length && text[i] !== ' ') i++;
    const word = text.slice(start, i);
    const eq = word.indexOf('=');
    if (eq > 0) out.set(word.slice(0, eq), word.slice(eq + 1));
  }
  return out;
}

/** Keep per-source state small: forget the oldest session past `limit`. */
class Bounded extends Map {
  constructor(limit) {
    super();
    this.limit = limit;
  }
  set(key, value) {
    if (this.has(key)) this.delete(key);
    else if (this.size >= this.limit) this.delete(this.keys().next().value);
    return super.set(key, value);
  }
}

class AcmeVpnParser {
  constructor() {
    /** session id → assigned address */
    this.sessions = new Bounded(10000);
  }

  /**
   * One line in, zero or more sightings out. `input.syslog.msg` is the message after the syslog
   * header; the time comes from that header unless a sighting sets `at` itself.
   */
  parse(input) {
    const kv = pairs(input.syslog.msg);
    const event = kv.get('event');
    const session = kv.get('session');
    if (event === 'connect') {
      const ip = kv.get('assigned');
      if (!ip) return [];
      if (session) this.sessions.set(session, ip);
      return [{ kind: 'tunnel-up', ip, user: kv.get('user'), remoteIp: kv.get('client') }];
    }
    if (event === 'disconnect') {
      const ip = session ? this.sessions.get(session) : undefined;
      if (!ip) return []; // connected before we started: we do not know its address
      this.sessions.delete(session);
      const sighting = { kind: 'tunnel-down', ip, user: kv.get('user'), remoteIp: kv.get('client') };
      const duration = Number(kv.get('duration'));
      if (Number.isInteger(duration) && duration >= 0) sighting.durationS = duration;
      return [sighting];
    }
    return []; // auth, keepalive, ...: recognised, but no sighting
  }
}

export default {
  id: 'acme-vpn',
  description: 'ACME VPN concentrator (example user plug-in): event=connect/disconnect',
  /** Cheap and specific: only lines whose syslog tag is ours. */
  detect(input) {
    return input.syslog.appName === 'acme-vpn';
  },
  /** A fresh parser with its own state; onsight keeps one per input source. */
  create() {
    return new AcmeVpnParser();
  },
};
