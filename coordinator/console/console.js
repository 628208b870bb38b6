'use strict';
// The operator's console: counters and commit latency from the coordinator's
// metrics, its open transactions with the stuck ones first, and the admin
// actions (retry phase 2, abort, mark a branch done). Everything goes through
// the HTTP admin API of the server that serves this page (docs/http.md).

const REFRESH_MS = 2000;
const CHART_WINDOW_MS = 10 * 60 * 1000;
const PAGE_SIZE = 200;

const $ = (selector) => document.querySelector(selector);
let selected = null;  // txid shown in the detail view
const latency = [];   // {t, p50, p99, n} per scrape interval, in seconds
let lastScrape = null;  // {t, buckets, retries} of the previous scrape

// --- The admin API -----------------------------------------------------------

// Calls the API; resolves with the JSON answer, rejects with an Error whose
// message is the server's "CODE: message".
async function api(method, path, body) {
  const init = {method, headers: {'Accept': 'application/json'}};
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new Error(`cannot reach the coordinator (${e.message})`);
  }
  const json = await res.json().catch(() => null);
  if (!res.ok) {
    throw new Error(json && json.message ? `${json.code}: ${json.message}` : `HTTP ${res.status}`);
  }
  return json;
}

const txPath = (txid) => `/v1/admin/transactions/${encodeURIComponent(txid)}`;

// --- Formatting ----------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function duration(seconds) {
  if (!isFinite(seconds) || seconds < 0) return '–';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

const ageOf = (unixMs) => (unixMs ? duration((Date.now() - unixMs) / 1000) : '–');
// UTC, as the daemons' logs print it.
const timeOf = (unixMs) => (unixMs ? new Date(unixMs).toISOString().replace('T', ' ').slice(0, 19) + 'Z' : '–');
const ms = (seconds) => (seconds === null ? '–' : `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1)} ms`);

// Why a transaction needs an operator, or null. COMMITTING is committed:
// what is stuck is phase 2 at a branch that keeps failing.
function stuckReason(tx) {
  const failing = tx.branches.filter((b) => !b.acknowledged && (b.last_error || b.heuristic_mixed));
  if (tx.state === 'COMMITTING' && failing.length > 0) {
    return `phase 2 failing at ${failing.map((b) => b.participant).join(', ')}`;
  }
  const limit = Number($('#stuck-after').value) || 30;
  const age = (Date.now() - tx.begin_unix_ms) / 1000;
  if (tx.begin_unix_ms && age > limit) return `open for ${duration(age)}`;
  return null;
}

function branchSummary(b) {
  const vote = b.vote || 'no vote';
  const ack = b.acknowledged ? 'acknowledged' : 'not acknowledged';
  return el('li', {className: b.acknowledged ? 'ok' : 'pending'}, el('strong', {}, b.participant),
            ` ${vote}, ${ack}`, b.heuristic_mixed ? el('span', {className: 'bad'}, ' HEURISTIC_MIXED') : null,
            b.awaited ? el('span', {className: 'pending'}, ' awaited (named in the Commit, not enlisted yet)') : null);
}

// --- Metrics -----------------------------------------------------------------------

// Prometheus text -> [{name, labels, value}]; comment lines do not match.
function parseMetrics(text) {
  const samples = [];
  const line = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/;
  for (const row of text.split('\n')) {
    const m = line.exec(row);
    if (!m) continue;
    const labels = {};
    for (const [, key, value] of (m[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    samples.push({name: m[1], labels, value: Number(m[3])});
  }
  return samples;
}

const total = (samples, name) =>
  samples.filter((s) => s.name === name).reduce((sum, s) => sum + s.value, 0);

// Cumulative counts by upper bound of the committed commits' histogram.
function committedBuckets(samples) {
  return samples
    .filter((s) => s.name === 'txcoord_commit_latency_seconds_bucket' && s.labels.outcome === 'committed')
    .map((s) => [s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), s.value])
    .sort((a, b) => a[0] - b[0]);
}

// The q-quantile of cumulative buckets, interpolated inside its bucket as
// Prometheus's histogram_quantile does; null without observations.
function quantile(q, buckets) {
  const count = buckets.length ? buckets[buckets.length - 1][1] : 0;
  if (count <= 0) return null;
  const rank = q * count;
  let lower = 0;
  let below = 0;
  for (const [le, cumulative] of buckets) {
    if (cumulative >= rank) {
      if (le === Infinity) return lower;  // past the last bound: that bound is all we know
      return lower + ((le - lower) * (rank - below)) / (cumulative - below);
    }
    lower = le;
    below = cumulative;
  }
  return lower;
}

async function refreshMetrics() {
  const samples = parseMetrics((await api('GET', '/v1/admin/metrics')).text);
  const now = Date.now();
  const oldest = total(samples, 'txcoord_oldest_open_transaction_seconds');
  const retries = total(samples, 'txcoord_phase2_retries_total');
  const counters = {
    commits: total(samples, 'txcoord_commits_total').toLocaleString(),
    aborts: total(samples, 'txcoord_aborts_total').toLocaleString(),
    open: total(samples, 'txcoord_open_transactions').toLocaleString(),
    oldest: total(samples, 'txcoord_open_transactions') > 0 ? duration(oldest) : '–',
    retries: retries.toLocaleString(),
  };
  for (const [key, text] of Object.entries(counters)) {
    document.querySelector(`[data-counter="${key}"]`).textContent = text;
  }
  // Flagged while they point at trouble: an old transaction, phase 2 failing.
  $('[data-counter="oldest"]').classList.toggle('warn', oldest > (Number($('#stuck-after').value) || 30));
  $('[data-counter="retries"]').classList.toggle('warn', !!lastScrape && retries > lastScrape.retries);

  const buckets = committedBuckets(samples);
  if (lastScrape) {
    // Deltas between two scrapes are the commits of that interval; a
    // restarted coordinator starts its counters again from zero.
    const before = new Map(lastScrape.buckets);
    const delta = buckets.map(([le, c]) => [le, c - (before.get(le) || 0)]);
    if (delta.every(([, c]) => c >= 0)) {
      latency.push({t: now, p50: quantile(0.5, delta), p99: quantile(0.99, delta),
                    n: delta.length ? delta[delta.length - 1][1] : 0});
    }
  }
  lastScrape = {t: now, buckets, retries};
  while (latency.length && latency[0].t < now - CHART_WINDOW_MS) latency.shift();
  drawLatency(now);
}

// The smallest of 1, 2, 5 times a power of ten that is >= v.
function niceCeil(v) {
  const power = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * power).find((n) => n >= v * 0.9999);
}

function drawLatency(now) {
  const canvas = $('#latency-chart');
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const g = canvas.getContext('2d');
  g.scale(ratio, ratio);
  const style = getComputedStyle(document.body);
  const pad = {left: 64, right: 16, top: 12, bottom: 24};
  const points = latency.filter((p) => p.n > 0);
  // From one minute after the page opened up to the last ten.
  const span = Math.min(CHART_WINDOW_MS, Math.max(60000, now - (latency.length ? latency[0].t : now)));
  $('#latency-window').textContent = `last ${Math.round(span / 60000)} min`;
  const top = niceCeil(Math.max(0.001, ...points.map((p) => p.p99)) * 1.1);
  const steps = top / 10 ** Math.floor(Math.log10(top)) === 5 ? 5 : 4;
  const x = (t) => pad.left + ((t - (now - span)) / span) * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - (v / top) * (height - pad.top - pad.bottom);

  g.font = '11px system-ui, sans-serif';
  g.fillStyle = style.getPropertyValue('--muted').trim();
  g.strokeStyle = style.getPropertyValue('--grid').trim();
  g.lineWidth = 1;
  for (let i = 0; i <= steps; i++) {
    const v = (top * i) / steps;
    g.beginPath();
    g.moveTo(pad.left, Math.round(y(v)) + 0.5);
    g.lineTo(width - pad.right, Math.round(y(v)) + 0.5);
    g.stroke();
    g.textAlign = 'right';
    g.fillText(v ? `${+(v * 1000).toPrecision(3)} ms` : '0', pad.left - 8, y(v) + 4);
  }
  g.textAlign = 'center';
  const tick = span <= 60000 ? 10000 : span <= 300000 ? 60000 : 120000;
  for (let ago = 0; ago <= span; ago += tick) {
    const label = ago === 0 ? 'now' : ago < 60000 ? `−${ago / 1000} s` : `−${ago / 60000} min`;
    g.fillText(label, Math.min(x(now - ago), width - pad.right - 10), height - 7);
  }
  for (const [key, color] of [['p50', '--p50'], ['p99', '--p99']]) {
    g.strokeStyle = g.fillStyle = style.getPropertyValue(color).trim();
    g.lineWidth = 2;
    g.beginPath();
    points.forEach((p, i) => (i ? g.lineTo(x(p.t), y(p[key])) : g.moveTo(x(p.t), y(p[key]))));
    g.stroke();
    for (const p of points) g.fillRect(x(p.t) - 2.5, y(p[key]) - 2.5, 5, 5);
  }
  canvas.dataset.points = String(points.length);

  const last = points[points.length - 1];
  const count = points.reduce((sum, p) => sum + p.n, 0);
  $('#latency-summary').replaceChildren(
    el('span', {className: 'key p50'}, 'p50'), ' ', el('span', {className: 'key p99'}, 'p99'), ' · ',
    last ? `latest: p50 ${ms(last.p50)}, p99 ${ms(last.p99)} · ${count} commits in the chart`
         : 'no commits since the page opened');
}

// --- Transactions ----------------------------------------------------------------

async function refreshTransactions() {
  const list = await api('GET', `/v1/admin/transactions?page_size=${PAGE_SIZE}`);
  const rows = list.transactions
    .map((tx) => ({tx, reason: stuckReason(tx)}))
    .filter(({reason}) => reason || !$('#only-stuck').checked)
    .sort((a, b) => (!!b.reason - !!a.reason) || a.tx.begin_unix_ms - b.tx.begin_unix_ms);
  $('#transactions tbody').replaceChildren(...rows.map(({tx, reason}) => transactionRow(tx, reason)));
  $('#no-transactions').hidden = rows.length > 0;
  $('#more-transactions').hidden = !list.next_page_token;
  $('#more-transactions').textContent = `Only the first ${PAGE_SIZE} are shown; use txctl list for the rest.`;
}

function transactionRow(tx, reason) {
  const open = el('button', {type: 'button', className: 'link', title: 'Show details'}, tx.txid);
  open.addEventListener('click', () => select(tx.txid));
  const unacked = tx.branches.filter((b) => !b.acknowledged);
  const attempts = unacked.reduce((n, b) => n + b.phase2_attempts, 0);
  const error = tx.branches.map((b) => b.last_error && `${b.participant}: ${b.last_error}`).find(Boolean) || '';
  const row = el('tr', {className: [reason ? 'stuck' : '', tx.txid === selected ? 'selected' : ''].join(' ')},
    el('td', {}, open),
    el('td', {}, el('span', {className: `state ${tx.state}`}, tx.state),
       reason ? el('div', {className: 'reason'}, `⚠ ${reason}`) : null),
    el('td', {className: 'age'}, ageOf(tx.begin_unix_ms)),
    el('td', {}, el('ul', {className: 'branches'}, ...tx.branches.map(branchSummary))),
    el('td', {className: 'number'}, String(attempts)),
    el('td', {className: 'error', title: error}, error));
  row.dataset.txid = tx.txid;
  return row;
}

async function select(txid) {
  selected = txid;
  $('#action-result').textContent = '';
  $('#detail').hidden = false;
  await refreshDetail();
  $('#detail').scrollIntoView({block: 'nearest'});
}

async function refreshDetail() {
  if (!selected) return;
  let tx;
  try {
    tx = await api('GET', txPath(selected));
  } catch (e) {
    $('#detail-fields').replaceChildren(el('dt', {}, 'Error'), el('dd', {className: 'bad'}, e.message));
    return;
  }
  $('#detail-txid').textContent = tx.txid;
  const fields = [['State', tx.state], ['Begun', `${timeOf(tx.begin_unix_ms)} (${ageOf(tx.begin_unix_ms)} ago)`],
                  ['Deadline', timeOf(tx.deadline_unix_ms)], ['Decided', timeOf(tx.decided_unix_ms)],
                  ['Reason', tx.reason || '–']];
  $('#detail-fields').replaceChildren(...fields.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  const committing = tx.state === 'COMMITTING';
  $('#detail-branches tbody').replaceChildren(...tx.branches.map((b) => {
    let action = null;
    if (committing && !b.acknowledged) {
      action = el('button', {type: 'button', className: 'danger'}, 'Mark done…');
      action.setAttribute('aria-label', `Mark branch ${b.participant} done`);
      action.addEventListener('click', () => markDone(tx.txid, b.participant));
    }
    return el('tr', {className: b.acknowledged ? '' : 'pending'},
      el('td', {}, b.participant), el('td', {}, b.endpoint), el('td', {}, b.vote || '–'),
      el('td', {}, b.acknowledged ? 'yes' : 'no'), el('td', {className: 'number'}, String(b.phase2_attempts)),
      el('td', {}, b.last_attempt_unix_ms ? `${ageOf(b.last_attempt_unix_ms)} ago` : '–'),
      el('td', {className: 'error'}, [b.heuristic_mixed ? 'HEURISTIC_MIXED' : '',
        b.awaited ? 'awaited: named in the Commit, not enlisted yet' : '', b.last_error].filter(Boolean).join(': ')),
      el('td', {}, action));
  }));
  // Retry resends phase 2: a COMMITTING transaction's, or a one-phase
  // commit's (the coordinator refuses it for votes still being collected).
  const onePhase = tx.state === 'PREPARING' && tx.reason === 'one-phase commit in progress';
  $('#retry').hidden = !(committing || onePhase);
  $('#abort').hidden = !(tx.state === 'ACTIVE' || tx.state === 'PREPARING');
}

// --- Actions -------------------------------------------------------------------

// Asks for a reason or note in a modal dialog; resolves with it, or null.
function ask({title, label, warning, confirm}) {
  const dialog = $('#ask');
  $('#ask-title').textContent = title;
  $('#ask-label').textContent = label;
  $('#ask-warning').textContent = warning || '';
  $('#ask-warning').hidden = !warning;
  $('#ask-ok').textContent = confirm;
  $('#ask-text').value = '';
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener('close', () =>
    resolve(dialog.returnValue === 'ok' ? $('#ask-text').value.trim() : null), {once: true}));
}

async function act(what, method, path, body) {
  const out = $('#action-result');
  out.className = '';
  out.textContent = `${what}…`;
  try {
    const answer = await api(method, path, body);
    out.className = 'ok';
    out.textContent = `${what}: ${answer.message || 'done'}`;
  } catch (e) {
    out.className = 'bad';
    out.textContent = `${what} failed: ${e.message}`;
  }
  await refresh();
}

$('#retry').addEventListener('click', () => act('Retry', 'POST', `${txPath(selected)}/retry`, {}));

$('#abort').addEventListener('click', async () => {
  const reason = await ask({title: `Abort ${selected}`, label: 'Reason (kept in the log)', confirm: 'Abort'});
  if (reason) await act('Abort', 'POST', `${txPath(selected)}/abort`, {reason});
});

async function markDone(txid, participant) {
  const note = await ask({
    title: `Mark ${participant} done in ${txid}`,
    warning: `This is a heuristic decision: the coordinator stops sending COMMIT to ${participant} and ` +
             'counts its branch as committed. Do it only after repairing that branch by hand; ' +
             'if it never commits, its data disagrees with the other branches.',
    label: 'Note (what was repaired, by whom)', confirm: 'Mark done'});
  if (note) {
    await act(`Mark ${participant} done`, 'POST',
              `${txPath(txid)}/branches/${encodeURIComponent(participant)}/mark-done`, {note});
  }
}

$('#close-detail').addEventListener('click', () => {
  selected = null;
  $('#detail').hidden = true;
  refreshTransactions().catch(() => {});
});
$('#only-stuck').addEventListener('change', () => refreshTransactions().catch(() => {}));

// --- Refresh loop ------------------------------------------------------------------

async function refresh() {
  const results = await Promise.allSettled([refreshMetrics(), refreshTransactions(), refreshDetail()]);
  const failed = results.find((r) => r.status === 'rejected');
  $('#status').className = failed ? 'bad' : '';
  $('#status').textContent = failed ? `Refresh failed: ${failed.reason.message}`
                                    : `Updated ${new Date().toLocaleTimeString()}`;
}

async function loop() {
  await refresh();
  setTimeout(loop, REFRESH_MS);
}
loop();
