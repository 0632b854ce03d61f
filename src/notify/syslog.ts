/**
 * The syslog sink: each event as one RFC 5424 message to a collector (a SIEM), over UDP (one
 * datagram each) or TCP (octet-counting framing, RFC 6587 §3.4.1: `LEN SP MSG`, so a message can
 * never be split or merged by a newline in a host name). The message (RFC 5424 §6):
 *
 *   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [onsight@32473 event="…" ip="…" …] text
 *
 * MSGID is the event name; the structured data carries the event's fields (PARAM-VALUE escapes
 * `"`, `\` and `]` as §6.3.3 says). 32473 is the enterprise number RFC 5612 reserves for
 * documentation and examples: onsight has no number of its own. Severity: notice for scans
 * finished and hosts scanned, warning for failed scans and missed hosts.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import type { Logger } from '../log.js';
import { DeliveryQueue, type Attempt } from './queue.js';
import { describeEvent, type NotifyEvent } from './events.js';
import { FACILITIES, type SyslogNotifyConfig } from './schema.js';

const SD_ID = 'onsight@32473';
const SEVERITY = { warning: 4, notice: 5 } as const;

/**
 * Control characters (C0, DEL, C1: CSI, NEL), line and paragraph separators and bidi overrides:
 * spaces in the message, so a line stays one line and a collector's screen shows it as it is
 */
const UNSHOWABLE = /[\x00-\x1f\x7f-\x9f\u2028-\u202e\u2066-\u2069]/g;

/** PARAM-VALUE escaping (RFC 5424 §6.3.3); unshowable characters become spaces (UNSHOWABLE) */
function sdValue(v: string): string {
  return v.replace(/[\\"\]]/g, (c) => '\\' + c).replace(UNSHOWABLE, ' ');
}

/** a PRINTUSASCII field (HOSTNAME, APP-NAME) at most `max` long, `-` when empty */
function header(v: string, max: number): string {
  const s = v.replace(/[^!-~]/g, '').slice(0, max);
  return s || '-';
}

function flatten(e: NotifyEvent): [string, string][] {
  const out: [string, string][] = [['event', e.event], ['id', e.id]];
  for (const part of [e.scan, e.host]) {
    if (!part) continue;
    for (const [k, v] of Object.entries(part)) if (v !== undefined && v !== null) out.push([k, String(v)]);
  }
  return out;
}

/** The RFC 5424 message for an event (without transport framing). */
export function formatSyslog(e: NotifyEvent, opts: { facility: number; appName: string; host?: string; pid?: number }): string {
  const sev = e.event === 'scan-failed' || e.event === 'host-missed' ? SEVERITY.warning : SEVERITY.notice;
  const sd = `[${SD_ID} ${flatten(e).map(([k, v]) => `${k}="${sdValue(v)}"`).join(' ')}]`;
  const msg = describeEvent(e).replace(UNSHOWABLE, ' ');
  return `<${opts.facility * 8 + sev}>1 ${e.at} ${header(opts.host ?? hostname(), 255)} ${header(opts.appName, 48)} ${opts.pid ?? process.pid} ${e.event} ${sd} ${msg}`;
}

export class SyslogSink {
  readonly queue: DeliveryQueue<NotifyEvent>;
  private readonly proto: 'udp' | 'tcp';
  private readonly host: string;
  private readonly port: number;
  private tcp: Socket | undefined;
  private udp: UdpSocket | undefined;

  constructor(private readonly cfg: SyslogNotifyConfig, log: Logger) {
    const m = /^(udp|tcp):\/\/\[?([^\]]+?)\]?:(\d+)$/.exec(cfg.target)!;
    this.proto = m[1] as 'udp' | 'tcp';
    this.host = m[2];
    this.port = Number(m[3]);
    this.queue = new DeliveryQueue(`syslog ${cfg.target}`, (e) => this.send(e), {
      maxQueue: cfg.maxQueue, maxAttempts: Infinity, backoffMs: 1000, maxBackoffMs: 60_000,
    }, log);
  }

  wants(e: NotifyEvent): boolean {
    return this.cfg.events.includes(e.event);
  }

  private async send(e: NotifyEvent): Promise<Attempt> {
    const msg = Buffer.from(formatSyslog(e, { facility: FACILITIES[this.cfg.facility], appName: this.cfg.appName }), 'utf8');
    if (this.proto === 'udp') {
      this.udp ??= createSocket(this.host.includes(':') ? 'udp6' : 'udp4').on('error', () => undefined);
      this.udp.unref();
      return new Promise((resolve) => this.udp!.send(msg, this.port, this.host, (err) => resolve(err ? { ok: false, retry: true, why: err.message } : { ok: true })));
    }
    try {
      const sock = await this.connection();
      const frame = Buffer.concat([Buffer.from(`${msg.length} `), msg]);
      await new Promise<void>((resolve, reject) => sock.write(frame, (err) => (err ? reject(err) : resolve())));
      return { ok: true };
    } catch (err) {
      this.tcp?.destroy();
      this.tcp = undefined;
      return { ok: false, retry: true, why: `${this.cfg.target}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    }
  }

  private connection(): Promise<Socket> {
    if (this.tcp && !this.tcp.destroyed) return Promise.resolve(this.tcp);
    return new Promise((resolve, reject) => {
      const s = connect({ host: this.host, port: this.port });
      s.setKeepAlive(true, 60_000);
      s.once('connect', () => {
        s.removeListener('error', reject);
        s.on('error', () => s.destroy()); // the next send reconnects
        s.on('close', () => {
          if (this.tcp === s) this.tcp = undefined;
        });
        s.unref();
        this.tcp = s;
        resolve(s);
      });
      s.once('error', reject);
    });
  }

  close(): void {
    this.queue.close();
    this.tcp?.end();
    this.udp?.close();
  }
}
