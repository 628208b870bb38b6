'use strict';
// Lists the coordinator's open transactions (GET /v1/admin/transactions).
async function refresh() {
  const res = await fetch('/v1/admin/transactions', {headers: {'Accept': 'application/json'}});
  const body = await res.json();
  const rows = document.querySelector('#transactions tbody');
  rows.textContent = '';
  for (const tx of body.transactions || []) {
    const tr = rows.insertRow();
    tr.insertCell().textContent = tx.txid;
    tr.insertCell().textContent = tx.state;
    tr.insertCell().textContent = tx.begin_unix_ms ? Math.round((Date.now() - tx.begin_unix_ms) / 1000) + ' s' : '';
    tr.insertCell().textContent = tx.branches.map(b => b.participant).join(', ');
  }
}
refresh();
setInterval(refresh, 2000);
