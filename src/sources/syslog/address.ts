/** A syslog input's `listen`: `udp://HOST:PORT`, `tcp://[::]:514`, `tls://0.0.0.0:6514`. */
export interface ListenAddress {
  proto: 'udp' | 'tcp' | 'tls';
  host: string;
  port: number;
}

/** `listen` → parts; throws a readable Error otherwise. */
export function parseListen(listen: string): ListenAddress {
  const m = /^(udp|tcp|tls):\/\/(\[[^\]]+\]|[^:/[\]]*):(\d{1,5})$/.exec(listen.trim());
  if (!m) throw new Error(`listen "${listen}": expected udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`listen "${listen}": port out of range`);
  let host = m[2];
  if (host.startsWith('[')) host = host.slice(1, -1);
  if (host === '' || host === '*') host = '0.0.0.0';
  return { proto: m[1] as ListenAddress['proto'], host, port };
}
