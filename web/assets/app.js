// gridmind dashboard: reads the node's JSON API, follows its event
// stream, and sends the API token (kept in this tab's sessionStorage)
// with every request. Everything from the network is set as text, never
// as markup.
'use strict';

const TOKEN_KEY = 'gridmind.token';
const $ = (id) => document.getElementById(id);

const state = {
  snap: null,          // the latest snapshot
  job: null,           // the selected job's id
  jobDetail: null,     // GET /api/v1/jobs/{id}
  jobFetching: false,
  explained: {},       // job id -> placement text
  stream: null,        // AbortController of the event stream
};

// ---- helpers ----------------------------------------------------------

function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }
function authHeaders(extra) {
  const hdr = Object.assign({}, extra);
  const t = token();
  if (t) hdr['Authorization'] = 'Bearer ' + t;
  return hdr;
}

async function errorText(res) {
  try {
    const body = await res.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch (e) { /* not JSON */ }
  return res.status + ' ' + res.statusText;
}

async function api(method, path, body) {
  const opts = { method, headers: authHeaders(), cache: 'no-store' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  if (!res.ok) {
    const err = new Error(await errorText(res));
    err.status = res.status;
    throw err;
  }
  const ct = res.headers.get('Content-Type') || '';
  return ct.includes('json') ? res.json() : res.text();
}

function short(id, n) {
  if (!id) return '';
  n = n || 10;
  return id.length > n + 2 ? id.slice(0, n) + '…' : id;
}
function idCell(id, n) { return h('span', { class: 'mono', title: id }, short(id, n)); }

function grid(micro) {
  if (micro === undefined || micro === null) return '';
  const whole = Math.trunc(micro / 1e6);
  const frac = Math.abs(micro % 1e6);
  let f = frac ? '.' + String(frac).padStart(6, '0').replace(/0+$/, '') : '';
  return whole.toLocaleString('en') + f + ' GRID';
}
function num(x, digits) {
  if (x === undefined || x === null || Number.isNaN(x)) return '';
  return Number(x).toLocaleString('en', { maximumFractionDigits: digits === undefined ? 1 : digits });
}
function pct(ppm) { return ppm === undefined || ppm === null ? '' : (ppm / 1e4).toFixed(0) + ' %'; }
function watts(w) {
  if (w === undefined || w === null) return '';
  return Math.abs(w) >= 1000 ? num(w / 1000, 2) + ' kW' : num(w, 0) + ' W';
}
function ago(t) {
  if (!t) return '';
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  if (s < 60) return s.toFixed(0) + ' s ago';
  if (s < 3600) return (s / 60).toFixed(0) + ' min ago';
  return (s / 3600).toFixed(1) + ' h ago';
}

function table(el, head, rows, empty) {
  const thead = h('thead', null, h('tr', null, head.map((c) => h('th', null, c))));
  const tbody = h('tbody');
  if (!rows.length) {
    tbody.append(h('tr', null, h('td', { class: 'empty', colspan: head.length }, empty || 'nothing yet')));
  }
  for (const r of rows) tbody.append(r instanceof Node ? r : h('tr', null, r.map((c) => h('td', null, c))));
  el.replaceChildren(thead, tbody);
}

function setText(id, text, title) {
  const el = $(id);
  el.textContent = text;
  if (title !== undefined) el.title = title;
}

function message(text, kind) {
  const el = $('action-msg');
  el.textContent = text;
  el.dataset.kind = kind || 'info';
}

// ---- token ------------------------------------------------------------

async function checkToken() {
  const el = $('token-status');
  if (!token()) {
    el.textContent = 'read-only';
    el.dataset.state = 'none';
    return;
  }
  try {
    const r = await api('GET', '/api/v1/auth');
    el.textContent = r.token ? 'token accepted' : 'token refused';
    el.dataset.state = r.token ? 'ok' : 'bad';
  } catch (e) {
    el.textContent = e.message;
    el.dataset.state = 'bad';
  }
}

function setupToken() {
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token-input').value.trim();
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
    $('token-input').value = '';
    $('token-input').placeholder = t ? 'token set for this tab' : 'paste <home>/api.token';
    checkToken();
    restartStream();
  });
  $('token-forget').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $('token-input').placeholder = 'paste <home>/api.token';
    checkToken();
    restartStream();
  });
  if (token()) $('token-input').placeholder = 'token set for this tab';
  checkToken();
}

// ---- event stream -----------------------------------------------------

function setConn(st, text) {
  const el = $('conn');
  el.dataset.state = st;
  el.textContent = text;
}

function restartStream() {
  if (state.stream) state.stream.abort();
}

// The stream is read with fetch rather than EventSource so that the
// token travels in a header (EventSource cannot send one, and a token in
// the URL would end up in logs and history).
async function stream() {
  for (;;) {
    const ctl = new AbortController();
    state.stream = ctl;
    try {
      const res = await fetch('/api/v1/events', { headers: authHeaders(), cache: 'no-store', signal: ctl.signal });
      if (!res.ok) {
        setConn('down', 'no access');
        showProblem(await errorText(res));
        await sleep(3000, ctl.signal);
        continue;
      }
      setConn('live', 'live');
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          handleEvent(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
      setConn('connecting', 'reconnecting…');
    } catch (e) {
      if (!ctl.signal.aborted) setConn('down', 'offline, retrying');
    }
    await sleep(ctl.signal.aborted ? 0 : 1000);
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    if (signal) signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

function handleEvent(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const c = line.indexOf(':');
    const field = c < 0 ? line : line.slice(0, c);
    const val = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
    if (field === 'event') event = val;
    else if (field === 'data') data.push(val);
  }
  if (!data.length) return;
  const body = JSON.parse(data.join('\n'));
  if (event === 'snapshot') {
    state.snap = body;
    showProblem('');
    render();
  } else if (event === 'problem') {
    showProblem(body.message);
  }
}

function showProblem(text) {
  const el = $('problem');
  el.hidden = !text;
  el.textContent = text;
}

// ---- rendering --------------------------------------------------------

function render() {
  const d = state.snap;
  if (!d) return;
  setText('node-id', short(d.node.id, 14) + (d.region ? ' · ' + d.region : '') + ' · v' + d.node.version, d.node.id);
  renderSummary(d);
  renderPeers(d);
  renderLedger(d);
  renderJobs(d);
  renderModels(d);
  refreshJob();
}

function everyone(d) {
  const self = { id: d.node.id, heartbeat: d.node.heartbeat, self: true, rtt_ns: 0 };
  const accounts = new Map(((d.ledger && d.ledger.accounts) || []).map((a) => [a.address, a]));
  return [self].concat(d.peers || []).map((p) => {
    const a = accounts.get(p.id);
    return Object.assign({}, p, { provider: a && a.provider, reputation: p.reputation || (a && a.provider ? a.reputation : undefined) });
  });
}

function renderSummary(d) {
  setText('peer-count', String(d.peer_count));
  setText('peer-sub', d.node.connected + ' connected · up ' + d.node.uptime);
  const l = d.ledger;
  if (l) {
    setText('ledger-height', l.height.toLocaleString('en'));
    setText('ledger-sub', l.chain_id + ' · block ' + ago(l.latest_block_time));
    const ok = l.supply.invariant;
    setText('supply-ok', ok ? 'holds' : 'BROKEN');
    $('supply-ok').dataset.ok = ok ? 'yes' : 'no';
    setText('supply-sub', grid(l.supply.total) + ' = ' + grid(l.supply.expected));
  } else {
    setText('ledger-height', '–');
    setText('ledger-sub', d.ledger_error || '');
    setText('supply-ok', '–');
    setText('supply-sub', '');
  }
  const jobs = d.jobs || [];
  setText('jobs-running', String(jobs.filter((j) => j.state === 'running' || j.state === 'open').length));
  setText('jobs-sub', jobs.length + ' on the ledger');
  let surplus = 0, carbon = 0, zones = new Set(), withCarbon = 0;
  for (const p of everyone(d)) {
    const e = p.heartbeat.energy || {};
    surplus += e.surplus_w || 0;
    if (e.carbon_g_per_kwh) { carbon += e.carbon_g_per_kwh; withCarbon++; }
    if (e.zone) zones.add(e.zone);
  }
  setText('energy-now', watts(surplus));
  setText('energy-sub', zones.size + ' zones · grid ' + (withCarbon ? num(carbon / withCarbon, 0) : '–') + ' gCO₂/kWh avg');
  const models = d.models || [];
  setText('models-count', String(models.length));
  setText('models-sub', models.filter((m) => m.local).length + ' here');
}

function renderPeers(d) {
  const rows = everyone(d).map((p) => {
    const hb = p.heartbeat || {};
    const e = hb.energy || {};
    const rep = p.reputation;
    const role = [p.self ? 'this node' : '', hb.validator ? 'validator' : '', p.provider ? 'provider' : '', hb.busy ? 'busy' : ''].filter(Boolean).join(', ');
    return h('tr', { class: p.self ? 'self' : '' },
      h('td', null, idCell(p.id, 12)),
      h('td', null, role),
      h('td', null, hb.region || ''),
      h('td', null, e.zone || ''),
      h('td', { class: 'num' }, watts(e.solar_w)),
      h('td', { class: 'num' }, watts(e.load_w)),
      h('td', { class: 'num' }, h('span', { class: e.surplus_w > 0 ? 'green' : '' }, watts(e.surplus_w))),
      h('td', { class: 'num' }, e.battery_pct ? num(e.battery_pct, 0) + ' %' : ''),
      h('td', { class: 'num' }, watts(e.device_w)),
      h('td', { class: 'num' }, e.carbon_g_per_kwh ? num(e.carbon_g_per_kwh, 0) : ''),
      h('td', { class: 'num' }, hb.price_per_unit ? num(hb.price_per_unit, 0) + ' µ' : ''),
      h('td', { class: 'num' }, hb.throughput_gflops ? num(hb.throughput_gflops, 1) : ''),
      h('td', { class: 'num' }, p.self ? '' : num(p.rtt_ns / 1e6, 1) + ' ms'),
      h('td', null, rep ? bar(rep.total) : h('span', { class: 'dim' }, 'no record')),
      h('td', null, (hb.serving || []).map((m) => idCell(m.hash, 8))));
  });
  table($('peers-table'), ['node', 'role', 'region', 'zone', 'solar', 'load', 'surplus', 'battery', 'device', 'gCO₂/kWh', 'price/unit', 'GFLOPS', 'RTT', 'reputation', 'serving'], rows);
}

function bar(ppm) {
  const v = Math.max(0, Math.min(1, ppm / 1e6));
  const fill = h('span', { class: 'fill' });
  fill.style.width = (v * 100).toFixed(0) + '%'; // CSSOM: allowed by the CSP, unlike a style attribute
  return h('span', { class: 'bar', title: pct(ppm) }, fill, h('span', { class: 'label' }, pct(ppm)));
}

function renderLedger(d) {
  const l = d.ledger;
  if (!l) {
    $('supply-facts').replaceChildren(h('p', { class: 'dim' }, d.ledger_error || 'no ledger'));
    table($('accounts-table'), ['account'], []);
    table($('tx-table'), ['height'], []);
    return;
  }
  const sp = l.supply;
  $('supply-facts').replaceChildren(
    fact('balances', grid(sp.balances)), fact('stakes', grid(sp.stakes)), fact('unbonding', grid(sp.unbonding)),
    fact('escrow', grid(sp.escrow)), fact('slash pool', grid(sp.slash_pool)), fact('minted', grid(sp.minted)),
    fact('burned', grid(sp.burned)), fact('total', grid(sp.total)), fact('genesis + minted', grid(sp.expected)),
    fact('invariant', sp.invariant ? 'holds at height ' + sp.height : 'BROKEN at height ' + sp.height),
    fact('app hash', short(l.app_hash, 16)));
  const accts = (l.accounts || []).slice().sort((a, b) => b.balance + b.stake - (a.balance + a.stake));
  table($('accounts-table'), ['account', 'balance', 'stake', 'role', 'reputation'], accts.map((a) => h('tr', { class: a.self ? 'self' : '' },
    h('td', null, idCell(a.address, 12)),
    h('td', { class: 'num' }, grid(a.balance)),
    h('td', { class: 'num' }, grid(a.stake)),
    h('td', null, [a.self ? 'this node' : '', a.provider ? 'provider, ' + a.price_per_unit + ' µ/unit' : ''].filter(Boolean).join(', ')),
    h('td', null, a.provider ? bar(a.reputation.total) : ''))));
  table($('tx-table'), ['height', 'what happened', 'fee', 'tx'], groupTransactions(l.transactions || []).slice(0, 14).map((g) => h('tr', null,
    h('td', { class: 'num' }, String(g.height)),
    h('td', null, g.events.length ? g.events.map((e) => h('div', null, idCell(e.account, 10), ' ', e.kind,
      e.amount ? ' ' + grid(e.amount) : '',
      e.job ? h('span', { class: 'dim' }, ' job ', idCell(e.job, 8)) : e.counterparty ? h('span', { class: 'dim' }, ' with ', idCell(e.counterparty, 8)) : '')) : h('span', { class: 'dim' }, 'no balance change but its fee')),
    h('td', { class: 'num' }, g.fee ? grid(g.fee) : ''),
    h('td', null, g.tx ? idCell(g.tx, 8) : h('span', { class: 'dim' }, 'block')))),
  'no transactions yet');
}

// groupTransactions folds the accounts' history entries into one row per
// transaction (a payment shows on both sides), its fees apart.
function groupTransactions(entries) {
  const groups = new Map();
  for (const t of entries) {
    const key = t.tx_hash || 'block/' + t.height + '/' + t.event.account + '/' + t.event.kind;
    let g = groups.get(key);
    if (!g) {
      g = { height: t.height, tx: t.tx_hash, events: [], fee: 0 };
      groups.set(key, g);
    }
    if (t.event.kind === 'fee') g.fee += t.event.amount || 0;
    else g.events.push(t.event);
  }
  return [...groups.values()].sort((a, b) => b.height - a.height);
}

function fact(k, v) { return h('div', { class: 'fact' }, h('span', { class: 'k' }, k), h('span', { class: 'v' }, v)); }

function renderJobs(d) {
  const jobs = d.jobs || [];
  if (!state.job && jobs.length) state.job = (jobs.find((j) => j.mine) || jobs[0]).id;
  table($('jobs-table'), ['job', 'name', 'state', 'workers', 'rounds settled', 'escrow', 'paid', 'refunded', 'requester', ''], jobs.map((j) => h('tr', {
    class: 'click' + (j.id === state.job ? ' sel' : ''),
    dataset: { job: j.id },
    onclick: () => { state.job = j.id; state.jobDetail = null; render(); },
  },
  h('td', null, idCell(j.id, 10)),
  h('td', null, j.spec.name),
  h('td', null, h('span', { class: 'pill', dataset: { state: j.state } }, j.state)),
  h('td', { class: 'num' }, String((j.leases || []).filter((l) => !l.end_height).length) + ' / ' + j.spec.workers),
  h('td', { class: 'num' }, j.rounds_settled + ' / ' + j.spec.rounds),
  h('td', { class: 'num' }, grid(j.escrow)),
  h('td', { class: 'num' }, grid(j.paid)),
  h('td', { class: 'num' }, grid(j.refunded)),
  h('td', null, idCell(j.requester, 10)),
  h('td', null, j.mine ? 'mine' : ''))), 'no jobs yet: post one below');
}

async function refreshJob() {
  if (!state.job || state.jobFetching) return;
  state.jobFetching = true;
  const id = state.job;
  try {
    const detail = await api('GET', '/api/v1/jobs/' + encodeURIComponent(id));
    if (id === state.job) {
      state.jobDetail = detail;
      renderJobDetail();
    }
    if (detail.placement && state.explained[id] === undefined) {
      state.explained[id] = '';
      state.explained[id] = await api('GET', '/api/v1/jobs/' + encodeURIComponent(id) + '/explain');
      if (id === state.job) renderJobDetail();
    }
  } catch (e) {
    if (id === state.job) showProblem('job ' + short(id) + ': ' + e.message);
  } finally {
    state.jobFetching = false;
  }
}

function renderJobDetail() {
  const det = state.jobDetail;
  $('job-detail').hidden = !det;
  if (!det) return;
  const j = det.job;
  const rounds = det.rounds || [];
  const receipts = det.receipts || [];
  setText('job-title', (j.spec.name || 'job') + ' · ' + j.id);
  const pill = $('job-state');
  pill.textContent = j.state;
  pill.dataset.state = j.state;
  $('cancel-btn').hidden = !(j.state === 'open' || j.state === 'running');
  const active = (j.leases || []).filter((l) => !l.end_height);
  $('job-facts').replaceChildren(
    fact('model', j.spec.model + (j.spec.codec ? ' · ' + j.spec.codec : '')),
    fact('workers', j.spec.workers + (active.length ? ' (' + active.length + ' leased now)' : '')),
    fact('rounds', receipts.length + ' receipted, ' + j.rounds_settled + ' settled of ' + j.spec.rounds),
    fact('inner steps', String(j.spec.inner_steps)),
    fact('budget', grid(j.spec.budget)), fact('escrow', grid(j.escrow)), fact('paid', grid(j.paid)), fact('refunded', grid(j.refunded)),
    fact('green preference', (j.spec.green_preference || 0) + ' %'),
    fact('posted at', 'height ' + j.posted_height + (j.ended_height ? ', ended ' + j.ended_height : '')));
  renderLoss(rounds);
  renderEnergy(rounds);
  renderRounds(j, rounds, receipts);
  renderPlacement(det.placement);
  $('placement-text').textContent = state.explained[j.id] || (det.placement ? '' : 'only the node that requested a job holds its placement record');
}

function renderLoss(rounds) {
  const el = $('loss-chart');
  const pts = rounds.filter((r) => r.eval_loss > 0 || r.train_loss > 0);
  if (!pts.length) {
    el.replaceChildren(h('p', { class: 'dim' }, state.jobDetail && state.jobDetail.placement ? 'waiting for the first round…' : 'rounds are reported to the requester\'s node'));
    return;
  }
  const W = 460, H = 200, L = 46, R = 10, T = 12, B = 28;
  const ys = pts.flatMap((r) => [r.eval_loss, r.train_loss]).filter((v) => v > 0);
  let lo = Math.min(...ys), hi = Math.max(...ys);
  if (hi - lo < 1e-6) { lo -= 0.5; hi += 0.5; }
  const pad = (hi - lo) * 0.08; lo -= pad; hi += pad;
  const xmax = Math.max(1, pts[pts.length - 1].round);
  const X = (r) => L + (W - L - R) * (r / xmax);
  const Y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'loss', role: 'img', 'aria-label': 'loss by round' });
  for (let i = 0; i <= 4; i++) {
    const v = lo + (hi - lo) * i / 4;
    svg.append(s('line', { x1: L, x2: W - R, y1: Y(v), y2: Y(v), class: 'gridline' }));
    svg.append(s('text', { x: L - 6, y: Y(v) + 4, class: 'tick', 'text-anchor': 'end' }, v.toFixed(2)));
  }
  const step = Math.max(1, Math.ceil(xmax / 8));
  for (let r = 0; r <= xmax; r += step) svg.append(s('text', { x: X(r), y: H - 8, class: 'tick', 'text-anchor': 'middle' }, String(r)));
  const line = (key, cls) => {
    const p = pts.filter((r) => r[key] > 0);
    if (!p.length) return;
    svg.append(s('polyline', { points: p.map((r) => X(r.round) + ',' + Y(r[key])).join(' '), class: cls }));
    for (const r of p) svg.append(s('circle', { cx: X(r.round), cy: Y(r[key]), r: 3, class: cls }));
  };
  line('train_loss', 'train');
  line('eval_loss', 'eval');
  el.replaceChildren(svg, h('div', { class: 'legend' }, h('span', { class: 'k eval' }, 'eval loss'), h('span', { class: 'k train' }, 'train loss'), h('span', null, 'x: round')));
}

function renderEnergy(rounds) {
  let wh = 0, green = 0, co2 = 0, tokens = 0, secs = 0;
  for (const r of rounds) { wh += r.energy_wh || 0; green += r.renewable_wh || 0; co2 += r.co2_g || 0; tokens += r.tokens || 0; secs += r.seconds || 0; }
  $('job-energy').replaceChildren(
    fact('energy', num(wh, 2) + ' Wh'),
    fact('from surplus renewables', wh ? num(100 * green / wh, 0) + ' %' : '–'),
    fact('CO₂', num(co2, 2) + ' g'),
    fact('tokens trained', num(tokens, 0)),
    fact('round time', rounds.length ? num(secs / rounds.length, 1) + ' s avg' : '–'));
}

function renderRounds(j, rounds, receipts) {
  const byRound = new Map();
  for (const r of rounds) byRound.set(r.round, { res: r });
  for (const rc of receipts) {
    const e = byRound.get(rc.round) || {};
    e.rc = rc;
    byRound.set(rc.round, e);
  }
  const leased = (j.leases || []).map((l) => l.provider);
  const rows = [...byRound.entries()].sort((a, b) => b[0] - a[0]).map(([n, e]) => {
    const r = e.res || {};
    const rc = e.rc;
    const contributors = r.participants || (rc ? rc.participants.map((p) => p.node) : []);
    const rejected = new Set();
    for (const rep of Object.values(r.reports || {})) for (const x of rep.rejected || []) rejected.add(x);
    for (const x of (rc && rc.withheld) || []) rejected.add(x);
    const missing = leased.filter((p) => !contributors.includes(p) && !rejected.has(p));
    const pays = (rc && rc.payments) || r.payments || [];
    const paid = pays.reduce((a, p) => a + p.amount, 0);
    return h('tr', null,
      h('td', { class: 'num' }, String(n)),
      h('td', { class: 'num' }, r.eval_loss > 0 ? r.eval_loss.toFixed(3) : ''),
      h('td', { class: 'num' }, r.train_loss > 0 ? r.train_loss.toFixed(3) : ''),
      h('td', null, contributors.map((c) => idCell(c, 8))),
      h('td', null, [...rejected].map((c) => h('span', { class: 'bad' }, idCell(c, 8))), missing.length && rc ? missing.map((c) => h('span', { class: 'dim', title: 'leased, not in this round' }, idCell(c, 8))) : ''),
      h('td', { class: 'num' }, r.tokens ? num(r.tokens, 0) : ''),
      h('td', { class: 'num' }, r.energy_wh !== undefined ? num(r.energy_wh, 2) : ''),
      h('td', { class: 'num' }, r.co2_g !== undefined ? num(r.co2_g, 2) : ''),
      h('td', { class: 'num' }, r.seconds ? num(r.seconds, 1) + ' s' : ''),
      h('td', null, rc ? (rc.settled ? 'settled: ' + grid(paid) + ' to ' + pays.length : 'receipted, settles later') : 'reported'),
      h('td', null, rc ? idCell(rc.model_hash, 8) : idCell(r.theta_hash, 8)));
  });
  table($('rounds-table'), ['round', 'eval loss', 'train loss', 'contributors', 'excluded', 'tokens', 'Wh', 'gCO₂', 'time', 'payment', 'θ hash'], rows, 'no round finished yet');
}

function renderPlacement(p) {
  if (!p) {
    table($('placement-table'), ['candidate'], [], 'only the node that requested this job holds its placement record');
    return;
  }
  const rows = (p.candidates || []).slice().sort((a, b) => (b.chosen - a.chosen) || ((a.rank || 999) - (b.rank || 999))).map((c) => h('tr', { class: c.chosen ? 'chosen' : '' },
    h('td', null, idCell(c.node, 12)),
    h('td', null, c.region),
    h('td', { class: 'num' }, num(c.price_per_unit, 0) + ' µ'),
    h('td', null, c.chosen ? 'chosen #' + c.rank : c.feasible ? 'feasible #' + c.rank : c.examined ? 'rejected' : 'not examined'),
    h('td', { class: 'num' }, c.examined ? c.scores.final.toFixed(3) : ''),
    h('td', { class: 'num' }, c.examined ? c.scores.price.toFixed(2) : ''),
    h('td', { class: 'num' }, c.examined ? c.scores.reputation.toFixed(2) : ''),
    h('td', { class: 'num' }, c.examined ? c.scores.green.toFixed(2) : ''),
    h('td', null, (c.rejections || []).map((r) => h('div', { class: 'bad' }, r.check + ': ' + r.reason)))));
  table($('placement-table'), ['candidate', 'region', 'price/unit', 'verdict', 'score', 'price', 'reputation', 'green', 'why not'], rows, 'no candidates');
}

function renderModels(d) {
  const models = d.models || [];
  table($('models-table'), ['model', 'served by', 'queue', 'p50', 'p95', ''], models.map((m) => h('tr', null,
    h('td', null, idCell(m.hash, 16)),
    h('td', null, m.servers.map((sv) => h('span', { class: sv === d.node.id ? 'self-tag' : '' }, idCell(sv, 8)))),
    h('td', { class: 'num' }, String(m.queue || 0)),
    h('td', { class: 'num' }, m.p50_ms ? num(m.p50_ms, 0) + ' ms' : ''),
    h('td', { class: 'num' }, m.p95_ms ? num(m.p95_ms, 0) + ' ms' : ''),
    h('td', null, m.local ? 'served here' : h('button', { type: 'button', class: 'small', onclick: () => serveModel(m.hash) }, 'Serve here')))),
  'no model served yet: one appears when a job finishes');
  const sel = $('prompt-model');
  const cur = sel.value;
  const hashes = models.map((m) => m.hash);
  if (sel.options.length !== hashes.length || [...sel.options].some((o, i) => o.value !== hashes[i])) {
    sel.replaceChildren(...hashes.map((x) => h('option', { value: x }, short(x, 16))));
    if (hashes.includes(cur)) sel.value = cur;
  }
}

// ---- actions (the server checks the token; the page only sends it) ----

async function serveModel(hash) {
  message('fetching and serving ' + short(hash, 12) + '…');
  try {
    await api('POST', '/api/v1/models/' + encodeURIComponent(hash), {});
    message('serving ' + short(hash, 12), 'ok');
  } catch (e) {
    message('serve refused: ' + e.message, 'error');
  }
}

function setupActions() {
  $('post-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const int = (k) => parseInt(f.get(k), 10) || 0;
    const spec = {
      name: String(f.get('name')), model: String(f.get('model')),
      workers: int('workers'), rounds: int('rounds'), inner_steps: int('inner_steps'),
      budget: Math.round(parseFloat(f.get('budget') || '0') * 1e6),
      green_preference: int('green'),
    };
    if (int('max_price') > 0) spec.max_price_per_unit = int('max_price');
    $('post-btn').disabled = true;
    message('posting ' + spec.name + ' (escrow, placement, leases)…');
    try {
      const r = await api('POST', '/api/v1/jobs', { spec, standby: int('standby') });
      state.job = r.job;
      state.jobDetail = null;
      message('posted job ' + r.job + ' on ' + r.active.length + ' workers', 'ok');
      refreshJob();
    } catch (e) {
      message('post refused: ' + e.message, 'error');
    } finally {
      $('post-btn').disabled = false;
    }
  });
  $('cancel-btn').addEventListener('click', async () => {
    const id = state.job;
    if (!id) return;
    message('cancelling ' + short(id) + '…');
    try {
      const r = await api('POST', '/api/v1/jobs/' + encodeURIComponent(id) + '/cancel', {});
      message('cancelled job ' + id + ' at height ' + r.height, 'ok');
      refreshJob();
    } catch (e) {
      message('cancel refused: ' + e.message, 'error');
    }
  });
  $('prompt-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const out = $('prompt-out');
    const model = $('prompt-model').value;
    out.hidden = false;
    if (!model) { out.textContent = 'no model is served yet'; return; }
    const prompt = $('prompt-text').value;
    out.textContent = '…';
    $('prompt-btn').disabled = true;
    try {
      const r = await api('POST', '/v1/completions', { model, prompt, max_tokens: parseInt(new FormData(ev.target).get('max_tokens'), 10) || 32 });
      out.replaceChildren(h('span', { class: 'dim' }, prompt), (r.choices && r.choices[0] && r.choices[0].text) || '');
    } catch (e) {
      out.textContent = 'refused: ' + e.message;
    } finally {
      $('prompt-btn').disabled = false;
    }
  });
}

// ---- start ------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  setupToken();
  setupActions();
  stream();
  // Times like "block 2 s ago" age between snapshots.
  setInterval(() => { if (state.snap && state.snap.ledger) setText('ledger-sub', state.snap.ledger.chain_id + ' · block ' + ago(state.snap.ledger.latest_block_time)); }, 1000);
});
