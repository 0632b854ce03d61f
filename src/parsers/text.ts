/** Small linear-time text helpers shared by parser plug-ins. None of them throws or backtracks. */
import type { SyslogMessage } from './syslog-header.js';

/** Split on runs of spaces/tabs, keeping at most `max` words (the rest of the line is not scanned). */
export function words(text: string, max = 64): string[] {
  const out: string[] = [];
  let i = 0;
  const n = text.length;
  while (i < n && out.length < max) {
    while (i < n && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
    if (i >= n) break;
    const s = i;
    while (i < n && text.charCodeAt(i) !== 32 && text.charCodeAt(i) !== 9) i++;
    out.push(text.slice(s, i));
  }
  return out;
}

/** `(name)` → `name`; also strips a trailing comma or colon. */
export function unparen(tok: string): string {
  let t = tok;
  while (t.endsWith(',') || t.endsWith(':') || t.endsWith(';')) t = t.slice(0, -1);
  if (t.startsWith('(') && t.endsWith(')')) t = t.slice(1, -1);
  return t;
}

/** `\"` → `"`, `\\` → `\` (the only escapes keyValues reads) */
const UNESCAPE = /\\(["\\])/g;

/**
 * `key=value key2="quoted value"` pairs (FortiGate, strongSwan-ish). Linear scan, bounded count.
 * The first occurrence of a key wins: a value a device copies from a client (a DHCP host name, a
 * user name) comes after the device's own fields and cannot replace them; `\"` and `\\` inside a
 * quoted value are a quote and a backslash, so such a value cannot end early either.
 */
export function keyValues(text: string, maxPairs = 256): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  const n = text.length;
  while (i < n && out.size < maxPairs) {
    while (i < n && text.charCodeAt(i) === 32) i++;
    const ks = i;
    while (i < n && text[i] !== '=' && text.charCodeAt(i) !== 32) i++;
    if (i >= n) break;
    if (text[i] !== '=') continue;
    const key = text.slice(ks, i);
    i++;
    let value: string;
    if (text[i] === '"') {
      const vs = ++i;
      let escaped = false;
      while (i < n && text[i] !== '"') {
        if (text[i] === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) {
          escaped = true;
          i++; // the escaped character is part of the value
        }
        i++;
      }
      value = escaped ? text.slice(vs, i).replace(UNESCAPE, '$1') : text.slice(vs, i);
      i++;
    } else {
      const vs = i;
      while (i < n && text.charCodeAt(i) !== 32) i++;
      value = text.slice(vs, i);
    }
    if (key && !out.has(key)) out.set(key, value);
  }
  return out;
}

/**
 * One CSV record (RFC 4180 quoting: `"a,b"`, `""` for a quote). Linear; stops after `maxFields`.
 */
export function csvFields(text: string, maxFields = 512): string[] {
  const out: string[] = [];
  let i = 0;
  const n = text.length;
  while (out.length < maxFields) {
    let field = '';
    if (text[i] === '"') {
      i++;
      while (i < n) {
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += text[i++];
      }
      while (i < n && text[i] !== ',') i++;
    } else {
      const s = i;
      while (i < n && text[i] !== ',') i++;
      field = text.slice(s, i);
    }
    out.push(field);
    if (i >= n) break;
    i++; // the comma
    if (i === n) {
      out.push('');
      break;
    }
  }
  return out;
}

/** A Map that forgets its oldest entries past `limit`: bounded per-source parser state. */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly limit: number) {
    super();
  }

  override set(key: K, value: V): this {
    if (super.has(key)) super.delete(key);
    else if (this.size >= this.limit) super.delete(super.keys().next().value as K);
    return super.set(key, value);
  }
}

/**
 * A syslog tag at the very start of `text` (`dnsmasq-dhcp[1105]: rest`, `dnsmasq: rest`), for lines
 * that reach a parser without a timestamp, so the header parser did not read the tag. Linear, bounded.
 */
export function leadingTag(text: string, maxTag = 64): { app: string; pid?: string; rest: string } | undefined {
  const n = Math.min(text.length, maxTag + 1);
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 9 || c === 58 /* : */ || c === 91 /* [ */) break;
    i++;
  }
  if (i === 0 || i >= n) return undefined;
  const app = text.slice(0, i);
  let pid: string | undefined;
  if (text.charCodeAt(i) === 91) {
    const s = i + 1;
    let j = s;
    while (j < n && text.charCodeAt(j) >= 48 && text.charCodeAt(j) <= 57) j++;
    if (j === s || text.charCodeAt(j) !== 93 /* ] */) return undefined;
    pid = text.slice(s, j);
    i = j + 1;
  }
  if (text.charCodeAt(i) !== 58) return undefined;
  i++;
  while (i < text.length && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
  return { app, pid, rest: text.slice(i) };
}

/** Is `s` a run of decimal digits (non-empty, at most `max` long)? */
export function isDigits(s: string, max = 20): boolean {
  if (s.length === 0 || s.length > max) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** A non-negative integer of at most 15 digits, or undefined. */
export function toCount(s: string | undefined): number | undefined {
  if (s === undefined || !isDigits(s, 15)) return undefined;
  return Number(s);
}

/**
 * Tags of programs that are no device onsight reads. Their messages carry text others choose (the
 * user name an SSH client tried, a URL, a DHCP client's host name), so `auto` never claims their
 * lines by content (a vendor marker in the message).
 */
const OTHER_PROGRAMS = new Set([
  'kernel', 'sudo', 'su', 'login', 'passwd', 'useradd', 'usermod', 'userdel', 'groupadd', 'chpasswd', 'polkitd', 'pkexec',
  'cron', 'crond', 'anacron', 'atd', 'dbus-daemon', 'NetworkManager', 'ModemManager', 'rsyslogd', 'syslog-ng', 'journal',
  'auditd', 'audit', 'sssd', 'winbindd', 'smbd', 'nmbd', 'slapd', 'krb5kdc', 'named', 'unbound', 'ntpd', 'chronyd',
  'avahi-daemon', 'snapd', 'dockerd', 'containerd', 'kubelet', 'nginx', 'httpd', 'apache2', 'haproxy', 'squid', 'vsftpd',
  'proftpd', 'pure-ftpd', 'xinetd', 'in.tftpd', 'sendmail', 'exim', 'mysqld', 'postgres', 'fail2ban-server', 'dhclient',
  'dhcpcd', 'wpa_supplicant', 'hostapd', 'gdm', 'lightdm', 'cupsd', 'zabbix_agentd', 'ssh', 'telnetd', 'agetty',
]);
/** families of tags: `sshd-session`, `systemd-logind`, `postfix/smtpd`, `CRON` */
const OTHER_PREFIXES = ['sshd', 'systemd', 'postfix/', 'dovecot', 'CRON', 'pam_', 'sudo', 'nginx', 'apache'];

/** Is `app` the syslog tag of a known program other than a device's (sshd, sudo, kernel, cron, …)? */
export function isOtherProgram(app: string): boolean {
  if (OTHER_PROGRAMS.has(app)) return true;
  for (const p of OTHER_PREFIXES) if (app.startsWith(p)) return true;
  return false;
}

/**
 * May `auto` claim this line by its content (a vendor marker that opens the message)? Yes when it
 * has no tag, when its tag is one of the format's own (`own`), or when the tag may be the device's
 * host name read as one (`Apr 27 02:03:03 dev01: %ASA-…`: no host name before it, no pid, no known
 * program). Never for another program's line (`bastion sshd[42]: Invalid user <any text>`).
 */
export function mayClaimByContent(syslog: SyslogMessage, own?: (app: string) => boolean): boolean {
  const app = syslog.appName;
  if (app === undefined) return true;
  if (own?.(app)) return true;
  return syslog.hostname === undefined && syslog.procId === undefined && !isOtherProgram(app);
}

/**
 * May a line whose tag is neither the format's own nor a host name read as a tag (a pid follows it)
 * be claimed by a strict server line that opens its message? Only for formats whose own line is
 * that exact (an OpenVPN peer then its phrase, Kea's severity then `[kea-dhcp4.`): programs such a
 * line comes under are unknowable (Docker's syslog driver tags with the container id and dockerd's
 * pid, `openvpn --daemon <name>`). Never under a known program's tag (`sshd[1]: …`).
 */
export function unknownProgramWithPid(syslog: SyslogMessage): boolean {
  const app = syslog.appName;
  return app !== undefined && syslog.procId !== undefined && !isOtherProgram(app);
}

/** English month abbreviations as syslog stamps and devices print them (`%b` in the C locale), capitalised so. */
export const MONTH_ABBREVIATIONS: ReadonlySet<string> = new Set(['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']);
