/**
 * The TCP (RFC 6587) and TLS (RFC 5425) syslog server: allow-list and connection caps at accept,
 * framing per connection, text and screening per frame, idle timeouts and backpressure (a sink
 * that says stop pauses every connection until it drains).
 */
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket, type SecureContextOptions } from 'node:tls';
import { readFile } from 'node:fs/promises';
import type { InputHandle, LineSink, SourceCounters, SyslogInputOptions } from '../types.js';
import { SyslogFramer, type CutFrame } from './framing.js';
import { frameText } from './text.js';
import { Counters, UnclaimedTally, makeAllow, peer } from './receive.js';
import { LogLimit } from '../../util/log-limit.js';
import type { ListenAddress } from './address.js';

/** The input's handle, and `pause`: stop reading every connection until the sink drains (as when a push says stop). */
export type StreamServer = InputHandle & { pause(): void };

/** What the server logs (the daemon's logger, or the receive thread's, which posts to it). */
export interface StreamLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

interface Conn {
  sock: Socket;
  framer: SyslogFramer;
  sender: string;
}

async function loadTls(tls: NonNullable<SyslogInputOptions['tls']>): Promise<SecureContextOptions> {
  const [cert, key, ca] = await Promise.all([readFile(tls.cert), readFile(tls.key), tls.ca ? readFile(tls.ca) : undefined]);
  return { cert, key, ca };
}

/** Default per-sender connection cap: a relay needs a few; a slow-drip sender must not take all. */
export const DEFAULT_MAX_CONNECTIONS_PER_SENDER = 32;

/**
 * Listen for TCP or TLS syslog, in whichever thread calls it: the main thread (receiveThread off)
 * or the stream receive thread (stream-thread.ts), whose sink posts the lines on. The caller says
 * "listening" (it knows where).
 */
export async function startStreamServer(addr: ListenAddress, opts: SyslogInputOptions, sink: LineSink, log: StreamLog): Promise<StreamServer> {
  const allow = makeAllow(opts.allow);
  const c = new Counters();
  const limit = new LogLimit();
  const conns = new Set<Conn>();
  const maxConns = opts.maxConnections || 1000;
  const maxPerSender = opts.maxConnectionsPerSender || DEFAULT_MAX_CONNECTIONS_PER_SENDER;
  const idleMs = (opts.idleTimeoutS || 300) * 1000;
  const maxBytes = opts.maxMessageBytes || 65536;
  let name = `${addr.proto}:${addr.port}`;
  let paused = false;
  let closing = false;

  const resumeAll = () => {
    if (!paused) return;
    paused = false;
    for (const k of conns) {
      if (k.sock.destroyed) continue;
      k.sock.resume();
      k.sock.setTimeout(idleMs); // a timeout that fired (and was ignored) while paused is not re-armed by itself
    }
  };
  const pauseAll = () => {
    if (paused) return;
    paused = true;
    c.event('paused');
    for (const k of conns) k.sock.pause();
    sink.onDrain(resumeAll);
  };

  // as for UDP: lines no parser can claim (most of a firewall stream) are counted by sender, not pushed
  const tally = new UnclaimedTally(sink, opts.format);
  const deliver = (k: Conn, frames: Buffer[]) => {
    const now = new Date();
    const at = now.getTime();
    for (const f of frames) {
      const t = frameText(f, opts.invalidUtf8);
      if (!t.ok) {
        c.drop(t.reason);
        continue;
      }
      if (t.notUtf8) c.event('notUtf8');
      c.received++;
      if (tally.screened(t.text, k.sender, at)) continue;
      // frames already cut from a chunk are pushed even when paused: at most one chunk's worth
      if (!sink.push({ text: t.text, receivedAt: now, source: name, sender: k.sender, format: opts.format })) pauseAll();
    }
    tally.report(name);
  };

  // framer counters are per connection; fold them into the listener's when a connection ends
  const foldFramer = (f: SyslogFramer, sender: string, ended?: Ended) => {
    if (f.counters.tooLarge) c.drop('tooLarge', f.counters.tooLarge);
    if (f.counters.badFrame) c.drop('badFrame', f.counters.badFrame);
    // (a frame the stream ended inside of is counted as badFrame too, but explained apart: nothing was read on after it)
    const cut = f.cutFrame;
    const broken = f.counters.badFrame - (cut ? 1 : 0);
    if (broken > 0) {
      const n = limit.take('badFrame', broken);
      if (n !== undefined) log.warn({ input: name, sender, badFrames: n }, `${sender} sent a broken octet-counted frame (a count that is no number or not followed by a space); the connection was read on from the next frame (${n} such frames since the last such line; logged at most once a minute, counted in onsight_input_lines_dropped_total{reason="badFrame"})`);
    }
    if (cut) {
      const n = limit.take('cutFrame');
      if (n !== undefined) log.warn({ input: name, sender, cutFrames: n, ...(cut.in === 'body' ? { receivedBytes: cut.received, announcedBytes: cut.announced } : cut.in === 'line' ? { receivedBytes: cut.received } : {}) }, `${cutFrameText(sender, cut, ended ?? 'closed', idleMs / 1000)}; the cut frame was dropped (${n} such frames since the last such line; logged at most once a minute, counted in onsight_input_lines_dropped_total{reason="badFrame"})`);
    }
    f.counters.tooLarge = 0;
    f.counters.badFrame = 0;
    f.cutFrame = undefined;
  };

  /** A connection the TLS/TCP server has accepted (after the handshake for TLS). */
  const onStream = (sock: Socket) => {
    const sender = peer(sock.remoteAddress);
    const k: Conn = { sock, framer: new SyslogFramer({ maxMessageBytes: maxBytes }), sender };
    conns.add(k);
    c.event('accepted');
    if (paused) sock.pause();
    /** the framer's end of stream was reached (close, idle or reset): a later error or close adds nothing */
    let ended = false;
    /** the stream ends (the sender's close, or ours when idle): a last line without its LF is a message, a cut octet frame is counted */
    const finish = (how: 'closed' | 'idle') => {
      ended = true;
      try {
        const frames = k.framer.end();
        foldFramer(k.framer, k.sender, how);
        deliver(k, frames);
      } catch {
        c.drop('error');
      }
    };
    sock.setTimeout(idleMs);
    sock.on('timeout', () => {
      if (paused) return; // not idle: we stopped reading
      c.event('idleTimeout');
      finish('idle'); // (what the sender left unfinished was dropped without a trace)
      sock.destroy();
    });
    sock.on('data', (chunk: Buffer) => {
      try {
        const frames = k.framer.push(chunk);
        foldFramer(k.framer, k.sender);
        deliver(k, frames);
      } catch (err) {
        c.drop('error');
        log.debug({ err, input: name }, 'stream data handling failed');
      }
    });
    sock.on('end', () => {
      finish('closed');
      sock.end();
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      log.debug({ err, input: name, sender }, 'connection error');
      // (a reset has no 'end': the frame it cut was dropped uncounted; counted and told as a close's is)
      if (ended) return;
      ended = true;
      k.framer.abort();
      foldFramer(k.framer, k.sender, { reset: err.code ?? err.message });
    });
    sock.on('close', () => {
      conns.delete(k);
    });
  };

  /** Every raw TCP connection, before any TLS handshake: allow-list and connection cap. */
  const admit = (sock: Socket): boolean => {
    const sender = peer(sock.remoteAddress);
    if (closing) {
      sock.destroy();
      return false;
    }
    if (!allow(sender)) {
      c.refuse('notAllowed');
      sock.destroy();
      return false;
    }
    if (raws.size >= maxConns) {
      c.refuse('connectionLimit');
      sock.destroy();
      return false;
    }
    const held = perSender.get(sender) ?? 0;
    if (held >= maxPerSender) {
      c.refuse('senderConnectionLimit');
      sock.destroy();
      return false;
    }
    perSender.set(sender, held + 1);
    raws.add(sock);
    sock.once('close', () => {
      raws.delete(sock);
      const n = (perSender.get(sender) ?? 1) - 1;
      if (n > 0) perSender.set(sender, n);
      else perSender.delete(sender);
    });
    return true;
  };
  /** every admitted TCP connection (for TLS: including those still in their handshake) */
  const raws = new Set<Socket>();
  /** admitted connections per sender address: one slow sender must not hold every slot */
  const perSender = new Map<string, number>();

  let server: TcpServer | TlsServer;
  let tlsOpts = opts.tls;
  if (addr.proto === 'tls') {
    if (!tlsOpts) throw new Error(`listen "${opts.listen}": tls:// needs tls.cert and tls.key`);
    const ctx = await loadTls(tlsOpts);
    const requireClientCert = tlsOpts.requireClientCert === true;
    // a client certificate is checked here rather than by node (rejectUnauthorized): under TLS 1.3
    // node drops a refused certificate's connection as "socket hang up", which names no cause
    const srv = createTlsServer({ ...ctx, requestCert: requireClientCert, rejectUnauthorized: false, handshakeTimeout: Math.min(idleMs, 30_000) });
    srv.on('connection', (raw: Socket) => {
      admit(raw);
    });
    // an operator setting up a sender needs to see why its handshakes fail (a wrong CA, no client
    // certificate, plain TCP on a TLS port), without a scanner of the port flooding the log
    const handshakeFailed = (sender: string, why: string, cause: string) => {
      c.event('tlsError');
      // (once a minute per cause: a port scanner's plain TCP must not hide a sender's wrong CA)
      const n = limit.take(`tls:${cause}`);
      if (n !== undefined) log.warn({ err: why, input: name, sender, failures: n }, `TLS handshake with ${sender} failed: ${why} (${n} failed since the last such line; logged at most once a minute, counted in onsight_input_events_total{event="tlsError"})`);
      else log.debug({ err: why, input: name, sender }, 'TLS handshake failed');
    };
    srv.on('secureConnection', (s: TLSSocket) => {
      if (closing) return void s.destroy();
      // (a TLS 1.3 session resumed without a peer certificate counts as authorized in node: refused
      // here too, whatever happens to the ticket; today a refused client never gets one)
      if (requireClientCert && (!s.authorized || !s.getPeerX509Certificate())) {
        // (before any data handler: nothing such a connection sends is read)
        handshakeFailed(peer(s.remoteAddress), clientCertFailure(s), 'clientCertificate');
        return void s.destroy();
      }
      onStream(s);
    });
    srv.on('tlsClientError', (err, s) => {
      // (node's codes and OpenSSL's reasons are a fixed set: the limiter's keys stay few)
      handshakeFailed(peer(s.remoteAddress), handshakeFailure(err), (err as Error & { code?: string }).code ?? 'other');
      // with a listener here node leaves the socket open (a handshake timeout included): close it,
      // or a client that never finishes its hello holds a connection slot for ever
      s.destroy();
    });
    server = srv;
  } else {
    server = createTcpServer((s) => {
      if (admit(s)) onStream(s);
    });
  }
  server.on('error', (err) => log.warn({ err, input: name }, 'server error'));
  await new Promise<void>((resolve, reject) => {
    const onErr = (err: Error) => reject(err);
    server.once('error', onErr);
    server.listen({ host: addr.host, port: addr.port, exclusive: true }, () => {
      server.off('error', onErr);
      resolve();
    });
  });
  const bound = server.address() as { address: string; port: number };
  name = `${addr.proto}:${bound.port}`;

  return {
    name,
    address: { host: bound.address, port: bound.port },
    pause: pauseAll,
    counters(): SourceCounters {
      for (const k of conns) foldFramer(k.framer, k.sender);
      // every admitted connection, TLS handshakes in progress included: they hold slots too
      return { received: c.received, dropped: { ...c.dropped }, refused: { ...c.refused }, connections: raws.size, events: { ...c.events } };
    },
    async reload() {
      if (addr.proto !== 'tls' || !tlsOpts) return;
      // read everything first: a half-written certificate leaves the old context in place
      const ctx = await loadTls(tlsOpts);
      (server as TlsServer).setSecureContext(ctx);
      c.event('reloaded');
      log.info({ input: name }, 'TLS certificates reloaded');
    },
    async close() {
      if (closing) return;
      closing = true;
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      // complete frames are already with the sink; a half-received one is dropped with its connection
      for (const k of conns) k.sock.destroy();
      for (const s of raws) s.destroy();
      await done;
      tlsOpts = undefined;
    },
  };
}

/**
 * What a failed handshake says, in one line: OpenSSL's reason and Node's code (its message is a
 * multi-line OpenSSL dump), with the usual cause of the common ones.
 */
function handshakeFailure(err: Error & { code?: string; reason?: string }): string {
  const what = err.reason ?? err.message.split('\n')[0];
  const code = err.code ? ` (${err.code})` : '';
  const hint = /wrong version number|http request|unknown protocol/i.test(what) ? ': the sender does not speak TLS (plain TCP to a tls:// port?)'
    : /did not return a certificate|certificate required/i.test(what) ? ': the sender sent no client certificate (tls.requireClientCert)'
      : /unknown ca|certificate verify failed|unable to get/i.test(what) ? ': its certificate is not signed by tls.ca'
        : '';
  return `${what}${code}${hint}`;
}

/** How a connection's stream ended: the sender's close, ours when idle, or a reset or other socket error (its code) */
type Ended = 'closed' | 'idle' | { reset: string };

/** What happened to a frame the stream ended inside of (SyslogFramer.end, abort), in the sender's terms. */
function cutFrameText(sender: string, cut: CutFrame, ended: Ended, idleS: number): string {
  const how = ended === 'idle' ? `the connection from ${sender} was closed as idle (no data for ${idleS} s, idleTimeoutS)`
    : ended === 'closed' ? `${sender} closed the connection` : `the connection from ${sender} ${ended.reset === 'ECONNRESET' ? 'was reset' : 'failed'} (${ended.reset})`;
  if (cut.in === 'count') return `${how} inside an octet count ("${cut.digits}", no space after it yet): no frame followed`;
  if (cut.in === 'line') return `${how} ${cut.received} bytes into a line with no LF yet (LF framing): with no close to say it was whole, it was not read as a message`;
  const why = ended === 'closed' || ended === 'idle' ? 'its count was larger than the message sent, or the sender stopped mid-frame' : 'the sender stopped mid-frame';
  return `${how} ${cut.received} bytes into a frame announced as ${cut.announced} bytes (octet counting): ${why}`;
}

/** Why a client's certificate was refused (`requireClientCert`), in one line. */
function clientCertFailure(s: TLSSocket): string {
  const err = s.authorizationError as (Error & { code?: string }) | string | null;
  const code = typeof err === 'string' ? err : err?.code ?? err?.message ?? 'unknown';
  if (!s.getPeerX509Certificate()) return `no client certificate (${code}): the sender must present one signed by tls.ca (tls.requireClientCert)`;
  return `its client certificate is not signed by tls.ca (${code})`;
}
