'use strict';
// The agent's console: its in-doubt branches (GET /v1/admin/in-doubt), a
// heuristic resolution for each (POST /v1/admin/in-doubt/{txid}/resolve),
// and the heuristic decisions it holds (GET /v1/admin/heuristics).

async function api(method, path, body) {
  const init = {method, headers: {'Accept': 'application/json'}};
  if (method === 'POST') {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body || {});
  }
  const res = await fetch(path, init);
  const json = await res.json();
  if (!res.ok) throw new Error(`${json.code || res.status}: ${json.message || ''}`);
  return json;
}

function cell(row, text) {
  const td = row.insertCell();
  td.textContent = text;
  return td;
}

function say(text, bad) {
  const p = document.getElementById('message');
  p.textContent = text;
  p.className = bad ? 'bad' : 'ok';
}

async function resolve(txid, decision) {
  const reason = window.prompt(
      `Force ${decision} for ${txid}? This is a heuristic decision: if the coordinator decided ` +
      'the other way, the transaction is HEURISTIC_MIXED. Reason (recorded):');
  if (reason === null) return;
  try {
    const answer = await api('POST', `/v1/admin/in-doubt/${encodeURIComponent(txid)}/resolve`,
                             {decision, reason});
    say(`${txid}: ${answer.decision}`, false);
  } catch (e) {
    say(`${txid}: ${e.message}`, true);
  }
  refresh();
}

async function refresh() {
  try {
    const doubt = await api('GET', '/v1/admin/in-doubt');
    document.getElementById('participant').textContent = doubt.participant;
    document.getElementById('coordinator').textContent = `coordinator ${doubt.coordinator_address}`;
    const rows = document.querySelector('#branches tbody');
    rows.textContent = '';
    for (const b of doubt.branches) {
      const tr = rows.insertRow();
      cell(tr, b.txid);
      cell(tr, b.coordinator);
      cell(tr, new Date(b.prepared_unix_ms).toISOString());
      cell(tr, `${Math.round(b.age_ms / 1000)} s`);
      cell(tr, b.vote);
      const actions = tr.insertCell();
      for (const decision of ['COMMITTED', 'ABORTED']) {
        const button = document.createElement('button');
        button.textContent = decision === 'COMMITTED' ? 'Commit…' : 'Abort…';
        button.addEventListener('click', () => resolve(b.txid, decision));
        actions.appendChild(button);
      }
    }
    document.getElementById('empty').hidden = doubt.branches.length > 0;
    const heuristics = await api('GET', '/v1/admin/heuristics?mixed_only=false');
    const hrows = document.querySelector('#heuristics tbody');
    hrows.textContent = '';
    for (const d of heuristics.decisions) {
      const tr = hrows.insertRow();
      cell(tr, d.txid);
      cell(tr, d.decision);
      cell(tr, d.coordinator_outcome || 'not yet known');
      cell(tr, d.heuristic_mixed ? 'HEURISTIC_MIXED' : 'no').className =
          d.heuristic_mixed ? 'bad' : '';
      cell(tr, d.reason);
    }
  } catch (e) {
    say(`cannot read the agent: ${e.message}`, true);
  }
}

refresh();
setInterval(refresh, 2000);
