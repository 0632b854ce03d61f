/**
 * The status page: one self-contained HTML document (no external assets), its script fetching
 * `/api/status` every few seconds. Everything from the state (hostnames, reasons: log-derived,
 * attacker-controlled) is inserted with textContent, never as HTML; the page is served with a
 * Content-Security-Policy that allows only its own inline style and script (by hash).
 */
import { createHash } from 'node:crypto';

const STYLE = `
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--mute:#667085;--line:#e4e7ec;--ok:#12805c;--warn:#b54708;--bad:#b42318;--acc:#2e5aac}
@media (prefers-color-scheme:dark){:root{--bg:#12151b;--card:#1b2029;--ink:#e6e9ef;--mute:#98a2b3;--line:#2c3340;--ok:#3ccb7f;--warn:#f79009;--bad:#f97066;--acc:#84adff}}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--ink)}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:.4rem 1.2rem;padding:14px 22px;border-bottom:1px solid var(--line);background:var(--card)}
header h1{font-size:20px;margin:0;letter-spacing:.02em}header h1 span{color:var(--acc)}
.meta{color:var(--mute);font-size:13px}.dot{display:inline-block;width:8px;height:8px;border-radius:50%;background:var(--ok);margin-right:5px;vertical-align:middle}
.dot.off{background:var(--bad)}.dot.stale{background:var(--warn)}
main{padding:16px 22px;max-width:1400px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(130px,1fr));gap:10px;margin-bottom:18px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.card b{display:block;font-size:22px;font-variant-numeric:tabular-nums}.card small{color:var(--mute)}
h2{font-size:15px;margin:22px 0 8px}
table{width:100%;border-collapse:collapse;background:var(--card);border:1px solid var(--line);border-radius:8px;overflow:hidden}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--mute);font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}tr:last-child td{border-bottom:0}
.ap{display:flex;align-items:center;gap:6px;white-space:nowrap;margin:1px 0}
.bar{display:inline-block;width:60px;height:7px;background:var(--line);border-radius:4px;overflow:hidden}
.bar i{display:block;height:100%;background:var(--acc)}.bar i.full{background:var(--warn)}
.why{color:var(--mute);font-size:12px}.stale{color:#b45309}.cidr{color:var(--mute);font-size:12px}
.pill{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;border:1px solid var(--line)}
.p-launched,.p-scanned{color:var(--ok);border-color:var(--ok)}.p-due{color:var(--acc);border-color:var(--acc)}
.p-dropped,.p-not-scanned,.p-canceled{color:var(--warn);border-color:var(--warn)}.p-failed{color:var(--bad);border-color:var(--bad)}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
#err{color:var(--bad)}.advice{border-left:3px solid var(--mute);padding:4px 10px;font-size:13px}.empty{color:var(--mute);text-align:center}
`;

const SCRIPT = `
(function(){
  var $ = function(id){ return document.getElementById(id); };
  function el(tag, cls, text){ var e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = String(text); return e; }
  function td(text, cls){ return el('td', cls, text); }
  function dur(s){ if (s < 90) return s + ' s'; if (s < 5400) return Math.round(s/60) + ' min'; if (s < 172800) return (s/3600).toFixed(1) + ' h'; return (s/86400).toFixed(1) + ' d'; }
  function time(iso){ var d = new Date(iso); return d.toLocaleTimeString(); }
  function card(label, value, note){ var c = el('div', 'card'); c.appendChild(el('b', '', value)); c.appendChild(el('small', '', label)); if (note) { c.appendChild(el('br')); c.appendChild(el('small', '', note)); } return c; }
  function fill(tbody, rows, cols){ tbody.textContent = ''; if (!rows.length) { var tr = el('tr'); var c = td('nothing yet', 'empty'); c.colSpan = cols; tr.appendChild(c); tbody.appendChild(tr); } rows.forEach(function(r){ tbody.appendChild(r); }); }
  function render(s){
    $('ver').textContent = 'v' + s.version;
    $('up').textContent = 'up ' + dur(s.uptimeS);
    var a = s.scanner.allowance;
    $('scanner').textContent = 'scanner ' + s.scanner.kind + ' · ' + s.scanner.apiCalls + ' API calls' + (a.remaining !== undefined ? ' · ' + a.remaining + (a.limit !== undefined ? '/' + a.limit : '') + ' left' : '') + (a.waitSec > 0 ? ' · waiting ' + a.waitSec + ' s' : '');
    var c = s.cluster;
    $('cluster').textContent = c ? 'node ' + c.node + ' · ' + (c.state === 'leader' ? 'leader' : (c.role === 'collector' ? 'collector' : 'follower')) + ' · ' +
      (c.leader ? (c.state === 'leader' ? 'leading' : 'leader ' + c.leader) + (c.leaderSince ? ' since ' + new Date(c.leaderSince).toLocaleString() : '') : 'no leader now') + ' · epoch ' + c.epoch : '';
    var lag = s.scanner.processingLag; var lagEl = $('lag');
    lagEl.textContent = 'processing lag ' + (lag.samples ? 'p50 ' + dur(lag.p50S) + ', p90 ' + dur(lag.p90S) + ' (' + lag.samples + ' scans)' : 'not learned yet') + ' · results held ' + dur(lag.waitS); lagEl.title = lag.how;
    var hip = s.scanner.hostsInParallel; lagEl.textContent += ' · ' + hip.value + ' hosts at once' + (hip.value !== hip.configured ? ' (' + (hip.value === hip.start ? 'option profile' : 'learned') + '; configured ' + hip.configured + ')' : ''); lagEl.title += ' · ' + hip.how;
    var mem = s.scanner.learnedState; if (mem.restored.length) { lagEl.textContent += ' · learning read back (saved ' + new Date(mem.savedBefore).toLocaleString() + ')'; } lagEl.title += ' · learned state: ' + mem.how;
    $('live').className = 'dot'; $('updated').textContent = 'updated ' + time(s.now); $('err').textContent = '';
    var adv = $('advice'), rs = s.scanner.rangeScans; adv.hidden = !(rs && rs.advice); adv.textContent = rs && rs.advice ? 'Advice: ' + rs.advice : '';
    var t = s.totals, cards = $('cards'); cards.textContent = '';
    cards.appendChild(card('devices present', t.present, t.identities + ' identities known'));
    // a large fleet is counted less often (costly.ts): say when, once it is over a minute old
    var counted = function(at){ return Date.parse(s.now) - Date.parse(at) > 60000 ? 'counted ' + time(at) : ''; };
    cards.appendChild(card('due now', t.due, counted(s.presentEvaluatedAt)));
    cards.appendChild(card('queued', t.queued));
    cards.appendChild(card('being scanned', t.scanning, t.confirming ? t.confirming + ' ended, confirming' : ''));
    cards.appendChild(card('missed (' + s.missedWindowH + ' h)', t.missed, counted(s.missedEvaluatedAt)));
    cards.appendChild(card('scans launched', t.launched, t.finished + ' finished · ' + t.failed + ' failed'));
    cards.appendChild(card('lines read', t.lines, t.sightings + ' sightings'));
    // the decode thread's watchdog (absent without that thread): lines it cut off, plug-ins it turned off
    var dec = s.decoder, off = dec ? dec.disabledPlugins : [];
    if (dec) {
      // (lines a parser stayed on past the bound, and lines the thread ended on: both dropped)
      var ex = dec.exitedBySource || {};
      var wc = card('lines cut off by the parser watchdog', dec.timedOut + (dec.exited || 0), off.length ? off.length + ' plug-in(s) turned off' : '');
      wc.setAttribute('data-decoder', 'timeouts'); wc.title = Object.keys(dec.timedOutBySource).map(function(k){ return k + ': ' + dec.timedOutBySource[k]; }).concat(Object.keys(ex).map(function(k){ return k + ': ' + ex[k] + ' (the thread ended)'; })).join(', ');
      cards.appendChild(wc);
    }
    $('plugins-off-box').hidden = !off.length;
    fill($('plugins-off'), off.map(function(p){
      var tr = el('tr'); tr.setAttribute('data-plugin', p.plugin); tr.appendChild(td(p.plugin, 'mono'));
      tr.appendChild(td(new Date(p.disabledAt).toLocaleString(), 'mono')); tr.appendChild(td(p.why, 'why')); return tr;
    }), 3);
    var vpn = s.addressReuse.channels.filter(function(c){ return c.channel === 'vpn'; })[0];
    if (vpn) { var rc = card('VPN addresses reused within ' + s.addressReuse.quickMin + ' min (' + s.addressReuse.windowH + ' h)', vpn.quick, 'of ' + vpn.reused + ' reused' + (vpn.quick ? ': a probe of a user who left can reach the next' : '')); rc.setAttribute('data-reuse', 'vpn'); cards.appendChild(rc); }
    var rows = s.regions.map(function(r){
      var tr = el('tr'); tr.setAttribute('data-region', r.name);
      var name = td(''); name.appendChild(el('b', '', r.name)); name.appendChild(el('div', 'cidr', r.cidrs.join(', '))); tr.appendChild(name);
      tr.appendChild(td(r.seen, 'n')); tr.appendChild(td(r.due, 'n')); tr.appendChild(td(r.queued, 'n')); tr.appendChild(td(r.scanning, 'n'));
      tr.appendChild(td(r.scannedInWindow, 'n'));
      var m = td(''); m.appendChild(el('div', 'n', r.missed));
      r.missedWhy.forEach(function(w){ m.appendChild(el('div', 'why', w.count + ' × ' + w.text + (w.examples.length ? ' (e.g. ' + w.examples.slice(0, 2).join(', ') + ')' : ''))); });
      var nd = Object.keys(r.notDue).filter(function(k){ return k !== 'scanned-recently'; });
      nd.forEach(function(k){ m.appendChild(el('div', 'why', 'now: ' + r.notDue[k] + ' ' + k)); });
      tr.appendChild(m);
      var sc = td(r.scans.running + ' running'); sc.appendChild(el('div', 'why', r.scans.launched + ' launched · ' + r.scans.finished + ' done · ' + r.scans.failed + ' failed')); tr.appendChild(sc);
      var ap = td('');
      r.appliances.forEach(function(x){
        var d = el('div', 'ap'); d.appendChild(el('span', 'dot' + (x.online ? '' : ' off')));
        d.appendChild(el('span', 'mono', x.name));
        var L = x.learned, cap = L.capacity;
        var bar = el('span', 'bar'); var i = el('i', x.load >= cap ? 'full' : ''); i.style.width = Math.min(100, Math.round(100 * x.load / Math.max(1, cap))) + '%'; bar.appendChild(i); d.appendChild(bar);
        d.appendChild(el('span', 'why', (x.online ? '' : 'offline · ') + x.load + '/' + cap));
        ap.appendChild(d);
        var lc = el('div', 'why learned', 'configured ' + x.capacity + ' · learned ' + (L.fullAt !== undefined ? 'full at ' + L.fullAt : L.slotsSeen ? '≥ ' + L.slotsSeen : 'nothing yet') + ' · pickup ' + dur(L.pickupS) + (L.pickupS !== L.configuredPickupS ? ' (configured ' + dur(L.configuredPickupS) + ')' : ''));
        lc.title = L.slotsHow + '; pickup: ' + L.pickupHow; ap.appendChild(lc);
        if (L.othersHow) { var lo = el('div', 'why learned', "another tool's scan running " + Math.floor(L.othersLongestH) + ' h'); lo.title = L.othersHow; ap.appendChild(lo); }
      });
      tr.appendChild(ap);
      return tr;
    });
    if (s.unmapped.seen) { var u = el('tr'); u.appendChild(td('(no region)', 'why')); u.appendChild(td(s.unmapped.seen, 'n')); var w = td(Object.keys(s.unmapped.notDue).map(function(k){ return s.unmapped.notDue[k] + ' ' + k; }).join(', '), 'why'); w.colSpan = 7; u.appendChild(w); rows.push(u); }
    fill($('regions'), rows, 9);
    fill($('inputs'), s.inputs.map(function(i){
      var tr = el('tr'); tr.appendChild(td(i.name, 'mono')); tr.appendChild(td(i.received, 'n'));
      var dr = Object.keys(i.dropped).filter(function(k){ return i.dropped[k] > 0; });
      tr.appendChild(td(dr.length ? dr.map(function(k){ return k + ' ' + i.dropped[k]; }).join(', ') : 'none', 'why'));
      tr.appendChild(td(i.connections === undefined ? '' : i.connections, 'n'));
      var last = td(i.idleS === undefined ? '' : (i.lastLineAt ? dur(i.idleS) + ' ago' : 'no line since start (' + dur(i.idleS) + ')'), i.idleS >= 900 ? 'why stale' : 'why');
      (i.senders || []).filter(function(x){ return x.idleS >= 300; }).slice(0, 5).forEach(function(x){ last.appendChild(el('div', 'why stale', 'no line from ' + x.sender + ' for ' + dur(x.idleS))); });
      if (i.senders && i.senders.length) last.appendChild(el('div', 'why', i.senders.length + ' sender(s)'));
      tr.appendChild(last);
      return tr;
    }), 5);
    var days = s.coverage || [];
    var ch = $('coverage-head'); ch.textContent = ''; ch.appendChild(el('th', '', 'Region'));
    days.forEach(function(p){ ch.appendChild(el('th', '', p.day.slice(5))); });
    fill($('coverage'), (days.length ? days[0].regions : []).map(function(r0, ri){
      var tr = el('tr'); tr.setAttribute('data-region', r0.region); tr.appendChild(td(r0.region));
      days.forEach(function(p){ var r = p.regions[ri]; var c = td(r.seen ? r.coveragePct + '%' : '–'); c.title = r.scanned + ' of ' + r.seen + ' scanned, ' + r.missed + ' missed'; if (r.seen) c.appendChild(el('div', 'why', r.scanned + '/' + r.seen)); tr.appendChild(c); });
      return tr;
    }), days.length + 1);
    fill($('decisions'), s.decisions.map(function(d){
      var tr = el('tr'); tr.appendChild(td(time(d.at), 'mono')); tr.appendChild(td(d.ip, 'mono'));
      var c = td(''); c.appendChild(el('span', 'pill p-' + d.decision, d.decision)); tr.appendChild(c);
      tr.appendChild(td(d.reason, 'why')); return tr;
    }), 4);
  }
  function load(){
    // (from the page's URL without a user and password: fetch refuses a URL that carries them, and
    // a page opened as https://user:token@host/ said only "cannot reach the daemon")
    fetch(location.origin + location.pathname.replace(/[^/]*$/, '') + 'api/status', { cache: 'no-store' }).then(function(r){ if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(render).catch(function(e){ $('live').className = 'dot off'; $('err').textContent = 'cannot reach the daemon: ' + e.message; })
      .then(function(){ setTimeout(load, 3000); });
  }
  load();
})();
`;

const sha = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;

export const PAGE_CSP = `default-src 'none'; style-src ${sha(STYLE)}; script-src ${sha(SCRIPT)}; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

export const PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>onsight status</title><link rel="icon" href="data:,"><style>${STYLE}</style></head>
<body>
<header><h1>on<span>sight</span></h1><span class="meta" id="ver"></span><span class="meta" id="up"></span><span class="meta" id="scanner"></span><span class="meta" id="lag"></span><span class="meta" id="cluster"></span>
<span class="meta"><span class="dot stale" id="live"></span><span id="updated">loading…</span></span><span class="meta" id="err"></span></header>
<main>
<p class="advice" id="advice" hidden></p>
<div class="cards" id="cards"></div>
<div id="plugins-off-box" hidden>
<h2>Parser plug-ins turned off</h2>
<p class="advice" id="plugins-off-how">The decode thread's watchdog turned these plug-ins off: each stalled it on one line or ended it again and again, or did so once before the thread was given up (the main thread, which then decodes, has no watchdog). Their lines are now unrecognized under format auto, dropped as parser errors under their own format. A plug-in stays off until onsight restarts (a reload, SIGHUP, does not turn it back on): fix it to run in linear time (parsers/README.md, rule 2) and never to exit or allocate without bound (rules 1 and 3), then <span class="mono">systemctl restart onsight</span>.</p>
<table><thead><tr><th>Plug-in</th><th>Turned off</th><th>Why</th></tr></thead><tbody id="plugins-off"></tbody></table>
</div>
<h2>Regions</h2>
<table><thead><tr><th>Region</th><th>Seen</th><th>Due</th><th>Queued</th><th>Scanning</th><th>Scanned in window</th><th>Missed and why</th><th>Scans</th><th>Appliances (load/learned capacity)</th></tr></thead>
<tbody id="regions"></tbody></table>
<h2>Coverage by day (devices scanned within policy / seen)</h2>
<table><thead><tr id="coverage-head"></tr></thead><tbody id="coverage"></tbody></table>
<h2>Inputs</h2>
<table><thead><tr><th>Input</th><th>Received</th><th>Dropped</th><th>Connections</th><th>Last line</th></tr></thead><tbody id="inputs"></tbody></table>
<h2>Last decisions</h2>
<table><thead><tr><th>Time</th><th>Address</th><th>Decision</th><th>Why</th></tr></thead><tbody id="decisions"></tbody></table>
</main>
<script>${SCRIPT}</script>
</body></html>
`;
