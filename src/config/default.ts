/**
 * The embedded default: what `onsight run` uses without --config. One command, nothing to set up:
 * SQLite under ./data, syslog on loopback 5514 (UDP and TCP), auto-detected formats, and a dry-run
 * scanner that prints the scans it would launch. Private address space is in scope.
 */
export const DEFAULT_CONFIG = {
  state: './data/onsight.db',
  inputs: [
    { type: 'syslog', listen: 'udp://127.0.0.1:5514', format: 'auto' },
    { type: 'syslog', listen: 'tcp://127.0.0.1:5514', format: 'auto' },
  ],
  policy: {
    rescanAfter: '30d',
    scope: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
    exclude: [],
  },
  regions: [
    { name: 'default', cidrs: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'], appliances: ['dry-run-appliance'], maxConcurrentScans: 1 },
  ],
  scanner: { type: 'dry-run' },
  http: { listen: '127.0.0.1:9321' },
};
