/**
 * The webhook sink: each event is POSTed as JSON, signed with a shared secret the way Stripe signs
 * its webhooks (https://stripe.com/docs/webhooks/signatures, "verify manually": the header carries
 * `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, so a receiver can refuse old
 * replays by `t`). Headers: `Onsight-Signature`, `Onsight-Event`, `Onsight-Delivery` (the event id,
 * the same on every retry, for receivers to drop repeats). A 2xx is delivered; a network error, a
 * timeout, 408, 429 and 5xx are retried with back-off (a Retry-After is honoured up to the
 * back-off cap); any other answer is a refusal, not retried. Logs name the receiver's origin only
 * (a path may hold a token) and never the secret.
 */
import { createHmac } from 'node:crypto';
import { fetch } from 'undici';
import type { Logger } from '../log.js';
import { loadPassword } from '../scanners/qualys/credentials.js';
import { onsightVersion } from '../http/status.js';
import { DeliveryQueue, type Attempt } from './queue.js';
import type { NotifyEvent } from './events.js';
import type { WebhookConfig } from './schema.js';

/** `t=…,v1=…` for `body` at `unixSeconds` (receivers: recompute and compare in constant time) */
export function signatureHeader(secret: string, unixSeconds: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

export class WebhookSink {
  readonly queue: DeliveryQueue<NotifyEvent>;
  private readonly secret: string;
  private readonly origin: string;

  constructor(private readonly cfg: WebhookConfig, log: Logger, env: NodeJS.ProcessEnv = process.env) {
    // read once at start: a missing secret stops the start with a clear error (never the value)
    this.secret = loadPassword({ passwordFile: cfg.secret.file, passwordEnv: cfg.secret.env, credential: cfg.secret.credential }, env);
    this.origin = new URL(cfg.url).origin;
    this.queue = new DeliveryQueue(`webhook ${this.origin}`, (e) => this.post(e), {
      maxQueue: cfg.maxQueue, maxAttempts: cfg.maxAttempts, backoffMs: cfg.backoffS * 1000, maxBackoffMs: cfg.maxBackoffS * 1000,
    }, log);
  }

  wants(e: NotifyEvent): boolean {
    return this.cfg.events.includes(e.event);
  }

  private async post(e: NotifyEvent): Promise<Attempt> {
    const body = JSON.stringify(e);
    let res;
    try {
      res = await fetch(this.cfg.url, {
        method: 'POST',
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.cfg.timeoutS * 1000),
        headers: {
          'content-type': 'application/json',
          'user-agent': `onsight/${onsightVersion()}`,
          'onsight-event': e.event,
          'onsight-delivery': e.id,
          'onsight-signature': signatureHeader(this.secret, Math.floor(Date.now() / 1000), body),
        },
      });
      await res.body?.cancel().catch(() => undefined);
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      return { ok: false, retry: true, why: `${this.origin}: ${(err as Error).name === 'TimeoutError' ? `no answer in ${this.cfg.timeoutS} s` : cause ?? (err as Error).message}` };
    }
    if (res.status >= 200 && res.status < 300) return { ok: true };
    const retry = res.status === 408 || res.status === 429 || res.status >= 500;
    const ra = Number(res.headers.get('retry-after'));
    return { ok: false, retry, why: `${this.origin} answered HTTP ${res.status}${retry ? '' : ' (refused; not retried)'}`, afterMs: ra > 0 ? ra * 1000 : undefined };
  }
}
