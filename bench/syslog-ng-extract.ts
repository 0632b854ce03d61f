/**
 * syslog-ng for the bench without installing it (syslog-ng-core conflicts with the installed
 * rsyslog): `apt-get download` the package and the libraries missing here, `dpkg -x` them into a
 * temp folder, and run the binary from there with LD_LIBRARY_PATH and --module-path. The folder is
 * kept between runs (ONSIGHT_BENCH_SYSLOG_NG_ROOT names another).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** the package and the libraries of its Debian 12 dependencies that a stock system may lack */
const PACKAGES = ['syslog-ng-core', 'libivykis0', 'libnet1', 'libpcre3', 'libwrap0'];

export interface SyslogNg {
  bin: string;
  modulePath: string;
  env: NodeJS.ProcessEnv;
}

/** The extracted syslog-ng, or why there is none. */
export function extractedSyslogNg(): SyslogNg | string {
  const dir = process.env.ONSIGHT_BENCH_SYSLOG_NG_ROOT ?? join(tmpdir(), 'onsight-bench-syslog-ng');
  const root = join(dir, 'root');
  const bin = join(root, 'usr/sbin/syslog-ng');
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    const dl = spawnSync('apt-get', ['download', ...PACKAGES], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    if (dl.status !== 0) return `apt-get download ${PACKAGES.join(' ')} failed: ${(dl.stderr || dl.error?.message || '').trim().slice(0, 200)}`;
    for (const deb of readdirSync(dir).filter((f) => f.endsWith('.deb'))) {
      const x = spawnSync('dpkg', ['-x', join(dir, deb), root], { encoding: 'utf8' });
      if (x.status !== 0) return `dpkg -x ${deb} failed: ${x.stderr.trim().slice(0, 200)}`;
    }
  }
  const versions = existsSync(join(root, 'usr/lib/syslog-ng')) ? readdirSync(join(root, 'usr/lib/syslog-ng')).filter((d) => /^\d+\.\d+$/.test(d)) : [];
  if (!existsSync(bin) || !versions.length) return `no syslog-ng binary or module folder under ${root}`;
  const env = {
    ...process.env,
    LD_LIBRARY_PATH: [join(root, 'usr/lib/x86_64-linux-gnu'), join(root, 'lib/x86_64-linux-gnu'), join(root, 'usr/lib/syslog-ng')].join(':'),
  };
  const v = spawnSync(bin, ['--version'], { env, encoding: 'utf8' });
  if (v.status !== 0) return `the extracted syslog-ng does not start: ${(v.stderr || '').trim().slice(0, 200)}`;
  return { bin, modulePath: join(root, 'usr/lib/syslog-ng', versions.sort().at(-1)!), env };
}
