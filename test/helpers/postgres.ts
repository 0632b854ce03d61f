// A real PostgreSQL for tests: Debian's server binaries, a temp data directory, a Unix socket only
// (listen_addresses=''), started and stopped by the test itself. PostgreSQL refuses to run as root,
// so as root the server runs as the `postgres` user the Debian package creates.
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface PgServer {
  /** directory holding the Unix socket (the `host` a client connects to) */
  socketDir: string;
  port: number;
  dataDir: string;
  user: string;
  database: string;
  /** libpq-style connection fields for `pg` */
  connection: { host: string; port: number; user: string; database: string };
  /** pid of the postmaster */
  pid(): number;
  stop(mode?: 'fast' | 'immediate'): void;
  start(): void;
  /** stop and remove the data directory */
  destroy(): void;
}

/** Where Debian puts the server binaries, newest version first; null when no server is installed. */
export function findPgBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = join(root, v, 'bin');
    if (existsSync(join(bin, 'pg_ctl')) && existsSync(join(bin, 'postgres'))) return bin;
  }
  return null;
}

/** Why PostgreSQL tests cannot run here, or null when they can. Tests print this when they skip. */
export function pgUnavailable(): string | null {
  if (!findPgBin()) return 'PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)';
  if (userInfo().uid === 0) {
    const r = spawnSync('id', ['-u', 'postgres']);
    if (r.status !== 0) return 'running as root and there is no postgres user to run the server as';
  }
  return null;
}

let portSeq = 0;

/** initdb + start a throwaway server. Throws with the server's own output when it cannot start. */
export function startPostgres(opts: { settings?: Record<string, string> } = {}): PgServer {
  const bin = findPgBin();
  if (!bin) throw new Error('PostgreSQL server binaries not found');
  const asRoot = userInfo().uid === 0;
  const base = mkdtempSync(join(tmpdir(), 'onsight-pg-'));
  chmodSync(base, 0o755);
  const dataDir = join(base, 'data');
  const socketDir = base;
  // a port number only names the socket file (no TCP listener); spread them so parallel test files differ
  const port = 20000 + ((process.pid * 7 + portSeq++ * 131) % 20000);
  const owner = asRoot ? 'postgres' : userInfo().username;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(base, uid, gid);
  }
  const run = (cmd: string, args: string[]) => {
    const full = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] as const : [join(bin, cmd), args] as const;
    const r = spawnSync(full[0], full[1] as string[], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  run('initdb', ['-D', dataDir, '-U', owner, '--auth=trust', '-E', 'UTF8', '--locale=C', '-N']);
  const settings: Record<string, string> = {
    listen_addresses: "''",
    unix_socket_directories: `'${socketDir}'`,
    port: String(port),
    fsync: 'off', // test speed; the crash tests kill clients and the server process, not the machine
    max_connections: '100',
    ...opts.settings,
  };
  const o = Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`).join(' ');
  const server: PgServer = {
    socketDir,
    port,
    dataDir,
    user: owner,
    database: 'postgres',
    connection: { host: socketDir, port, user: owner, database: 'postgres' },
    pid() {
      const r = spawnSync('head', ['-1', join(dataDir, 'postmaster.pid')], { encoding: 'utf8' });
      return Number(r.stdout.trim());
    },
    start() {
      run('pg_ctl', ['-D', dataDir, '-o', o, '-l', join(base, 'server.log'), '-w', '-t', '30', 'start']);
    },
    stop(mode = 'fast') {
      if (!existsSync(join(dataDir, 'postmaster.pid'))) return;
      run('pg_ctl', ['-D', dataDir, '-m', mode, '-w', '-t', '30', 'stop']);
    },
    destroy() {
      try { server.stop('immediate'); } catch { /* already down */ }
      rmSync(base, { recursive: true, force: true });
    },
  };
  server.start();
  return server;
}

/** A new, empty database on `server`; the connection fields for it. */
export async function createDatabase(server: PgServer, name: string): Promise<PgServer['connection']> {
  const admin = new pg.Client(server.connection);
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return { ...server.connection, database: name };
}
