/**
 * The `notify` config section: where onsight tells others what it did — a signed JSON webhook and
 * RFC 5424 syslog lines to a collector (a SIEM). Both are optional; each takes the events it wants.
 */
import { z } from 'zod';
import { oneSecretSource } from '../net/webconfig.js';
import { urlCredentials } from '../util/url.js';

export const NOTIFY_EVENTS = ['scan-finished', 'scan-failed', 'host-scanned', 'host-missed'] as const;
export type NotifyEventKind = (typeof NOTIFY_EVENTS)[number];

const events = z.array(z.enum(NOTIFY_EVENTS)).min(1).default([...NOTIFY_EVENTS]);

const webhookUrl = z.string().superRefine((s, ctx) => {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'not a URL (e.g. https://hooks.example.org/onsight)' });
    return;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') ctx.addIssue({ code: 'custom', message: 'expected an http:// or https:// URL' });
  const why = urlCredentials(s);
  if (why) ctx.addIssue({ code: 'custom', message: `credentials in the URL (${why}) are refused: the shared secret comes from secret.file, secret.env or secret.credential` });
});

/** the shared secret's source: exactly one of a file, an environment variable or a systemd credential */
const secret = z.object({ file: z.string().min(1).optional(), env: z.string().min(1).optional(), credential: z.string().min(1).optional() })
  .strict().superRefine(oneSecretSource);

export const webhookSchema = z.object({
  url: webhookUrl,
  secret,
  events,
  /** one delivery attempt's time limit, seconds */
  timeoutS: z.number().positive().max(300).default(10),
  /** attempts per event before it is given up (and counted failed) */
  maxAttempts: z.number().int().min(1).max(100).default(8),
  /** the first retry's delay, seconds; each next one doubles, up to maxBackoffS */
  backoffS: z.number().positive().default(2),
  maxBackoffS: z.number().positive().default(300),
  /** events waiting beyond this many are dropped, oldest first (counted): a dead receiver never grows memory */
  maxQueue: z.number().int().positive().default(10_000),
}).strict();

const syslogTarget = z.string().refine((s) => /^(udp|tcp):\/\/(\[[0-9a-fA-F:.]+\]|[^:/\s[\]]+):\d{1,5}$/.test(s) && Number(s.slice(s.lastIndexOf(':') + 1)) >= 1 && Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, {
  message: 'expected udp://HOST:PORT or tcp://HOST:PORT with a port 1..65535 (IPv6 hosts in brackets)',
});

/** RFC 5424 §6.2.1 facility names (local0..local7 are the ones meant for sites) */
export const FACILITIES: Record<string, number> = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

export const syslogNotifySchema = z.object({
  target: syslogTarget,
  facility: z.enum(Object.keys(FACILITIES) as [string, ...string[]]).default('local0'),
  appName: z.string().regex(/^[!-~]{1,48}$/, 'printable ASCII without spaces, at most 48 characters (RFC 5424 APP-NAME)').default('onsight'),
  events,
  maxQueue: z.number().int().positive().default(10_000),
}).strict();

export const notifySchema = z.object({
  webhook: webhookSchema.optional(),
  syslog: syslogNotifySchema.optional(),
}).strict();

export type NotifyConfig = z.output<typeof notifySchema>;
export type WebhookConfig = z.output<typeof webhookSchema>;
export type SyslogNotifyConfig = z.output<typeof syslogNotifySchema>;
