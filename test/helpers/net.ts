/** Tiny loopback clients for tests: one datagram, one TCP connection. */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';

export function udpSend(port: number, payload: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.send(payload, port, '127.0.0.1', (err) => {
      s.close();
      if (err) reject(err);
      else resolve();
    });
  });
}

/** Connect, write everything, close; resolves when the connection is closed. */
export function tcpSend(port: number, payload: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.end(payload));
    s.on('close', () => resolve());
    s.on('error', reject);
  });
}
