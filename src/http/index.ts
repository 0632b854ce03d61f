/** The daemon's HTTP face: /metrics, /healthz, /api/status and the status page. */
export { startHttp, parseHttpListen, type HttpHandle } from './server.js';
export { buildStatus, type Status, type RegionStatus } from './status.js';
export { renderMetrics } from './metrics.js';
export { MetricsRegistry, parsePromText } from './prom.js';
