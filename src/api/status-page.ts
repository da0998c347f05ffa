/**
 * The status page (GET /, and GET /groups/{name}/ for a group): one HTML
 * page and its script, no framework. The page holds no data; its script
 * reads GET /v1/cluster/events (Server-Sent Events, read with fetch so that
 * it can send a token) and /metrics under the page's own group, and draws
 * every member with its role, indexes, lag and reachability, the leader's
 * changes since the page opened, writes per second and watchers; the
 * default group's page also lists the groups (GET /v1/groups), each a link
 * to its page. Everything from the server is written with textContent,
 * never as HTML.
 */

export const STATUS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>durable-raft status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d232a; background: #f7f8fa; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; }
  .bar { display: flex; gap: 1.5rem; flex-wrap: wrap; align-items: baseline; margin-bottom: 1rem; }
  .stat b { font-size: 1.2rem; display: block; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #e3e6ea; white-space: nowrap; }
  th { font-weight: 600; color: #57606a; font-size: 12px; text-transform: uppercase; }
  tr.leader td:first-child::after { content: " \\2605"; color: #b08800; }
  td.up { color: #1a7f37; }
  td.down { color: #cf222e; font-weight: 600; }
  tr.unreachable { background: #fff0f0; }
  #conn.bad { color: #cf222e; }
  #changes { margin: 0; padding-left: 1.2rem; }
  button { font: inherit; padding: .1rem .5rem; }
  label { color: #57606a; }
</style>
</head>
<body>
<h1>durable-raft <span id="group"></span></h1>
<div class="bar">
  <div class="stat">leader<b id="leader">-</b></div>
  <div class="stat">term<b id="term">-</b></div>
  <div class="stat">commit index<b id="commit">-</b></div>
  <div class="stat">revision<b id="revision">-</b></div>
  <div class="stat">writes/s<b id="writes">-</b></div>
  <div class="stat">watchers<b id="watchers">-</b></div>
  <div class="stat">connection<b id="conn">connecting</b></div>
  <label>token <input id="token" type="password" autocomplete="off" size="18"></label>
</div>
<table>
  <thead><tr><th>member</th><th>membership</th><th>role</th><th>reachable</th><th>term</th><th>commit</th>
  <th>applied</th><th>lag</th><th>last contact</th><th>location</th><th></th></tr></thead>
  <tbody id="members"></tbody>
</table>
<h2 style="font-size:1rem">leader changes since this page opened</h2>
<ol id="changes"></ol>
<div id="groups-box" hidden>
<h2 style="font-size:1rem">groups</h2>
<table>
  <thead><tr><th>group</th><th>size</th><th>state</th><th>created</th></tr></thead>
  <tbody id="groups"></tbody>
</table>
<p><button id="more-groups" hidden>more</button></p>
</div>
<p id="error" class="bad"></p>
<script src="/status.js"></script>
</body>
</html>
`;

export const STATUS_JS = `'use strict';
const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'durable-raft-token';
const WATCHER_METRIC = 'durable_raft_mvcc_watchers';
// The group this page is for: /groups/{name}/ (every request goes under it), or the default group at /.
const PATH_PARTS = location.pathname.split('/');
const GROUP = PATH_PARTS[1] === 'groups' && /^[a-z0-9-]{1,63}$/.test(PATH_PARTS[2] || '') ? PATH_PARTS[2] : undefined;
const BASE = GROUP ? '/groups/' + GROUP : '';
let token = sessionStorage.getItem(TOKEN_KEY) || '';
let stream;
let last;
const changes = [];

$('token').value = token;
$('token').addEventListener('change', () => {
  token = $('token').value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  connect();
});

function headers(extra) {
  return Object.assign(token ? { Authorization: 'Bearer ' + token } : {}, extra || {});
}

function cell(row, text, cls) {
  const td = document.createElement('td');
  td.textContent = text === null || text === undefined ? '-' : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function ago(iso) {
  if (!iso) return null;
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  return s < 1 ? 'now' : s.toFixed(s < 10 ? 1 : 0) + ' s ago';
}

async function act(path, body) {
  $('error').textContent = '';
  const res = await fetch(BASE + path, { method: 'POST', headers: headers({ 'Content-Type': 'application/json' }), body: JSON.stringify(body) });
  if (!res.ok) {
    const e = await res.json().catch(() => ({}));
    $('error').textContent = path + ': ' + res.status + ' ' + ((e.error && e.error.message) || '');
  }
}

function render(view) {
  const now = Date.now();
  $('leader').textContent = view.leader || 'none';
  $('term').textContent = view.term ?? '-';
  $('commit').textContent = view.commit_index ?? '-';
  $('revision').textContent = view.revision ?? '-';
  if (last && view.revision !== null && last.view.revision !== null && now > last.at) {
    $('writes').textContent = Math.max(0, ((view.revision - last.view.revision) * 1000) / (now - last.at)).toFixed(1);
  }
  if (!last || last.view.leader !== view.leader || last.view.term !== view.term) {
    changes.unshift({ at: new Date(now).toLocaleTimeString(), leader: view.leader || 'none', term: view.term });
    changes.length = Math.min(changes.length, 20);
    const ol = $('changes');
    ol.replaceChildren(...changes.map((c) => {
      const li = document.createElement('li');
      li.textContent = c.at + ': ' + c.leader + ' (term ' + (c.term ?? '-') + ')';
      return li;
    }));
  }
  last = { view, at: now };
  const rows = view.members.map((m) => {
    const tr = document.createElement('tr');
    tr.dataset.member = m.name;
    if (m.name === view.leader) tr.classList.add('leader');
    if (!m.reachable) tr.classList.add('unreachable');
    cell(tr, m.name);
    cell(tr, m.membership);
    cell(tr, m.role);
    cell(tr, m.reachable ? 'up' : 'unreachable', m.reachable ? 'up' : 'down').dataset.field = 'reachable';
    cell(tr, m.term);
    cell(tr, m.commit_index);
    cell(tr, m.applied_index);
    cell(tr, m.reachable && view.commit_index !== null ? Math.max(0, view.commit_index - m.applied_index) : null);
    cell(tr, m.name === view.leader ? 'leader' : ago(m.last_contact));
    cell(tr, m.location_hint);
    const td = cell(tr, '');
    if (m.membership === 'voter' && m.name !== view.leader && m.reachable) {
      const b = document.createElement('button');
      b.textContent = 'make leader';
      b.onclick = () => act('/v1/cluster/leader', { to: m.name });
      td.appendChild(b);
    } else if (m.membership === 'learner' && m.reachable) {
      const b = document.createElement('button');
      b.textContent = 'promote';
      b.onclick = () => act('/v1/cluster/members', { action: 'promote', node: m.name });
      td.appendChild(b);
    }
    return tr;
  });
  $('members').replaceChildren(...rows);
}

async function watchers() {
  const res = await fetch(BASE + '/metrics', { headers: headers() }).catch(() => undefined);
  if (!res || !res.ok) return;
  let sum = 0;
  for (const line of (await res.text()).split('\\n')) {
    if (line.startsWith(WATCHER_METRIC + '{') || line.startsWith(WATCHER_METRIC + ' ')) sum += Number(line.split(' ').pop()) || 0;
  }
  $('watchers').textContent = String(sum);
}

function status(text, bad) {
  $('conn').textContent = text;
  $('conn').className = bad ? 'bad' : '';
}

async function connect() {
  if (stream) stream.abort();
  const ctl = new AbortController();
  stream = ctl;
  status('connecting', false);
  try {
    const res = await fetch(BASE + '/v1/cluster/events', { headers: headers(), signal: ctl.signal });
    if (!res.ok) {
      const e = await res.json().catch(() => ({}));
      status(res.status === 401 || res.status === 403 ? 'needs an admin token' : 'error ' + res.status, true);
      $('error').textContent = (e.error && e.error.message) || '';
      if (res.status === 401 || res.status === 403) return;
    } else {
      status('live', false);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.indexOf('\\n\\n')) >= 0) {
          const frame = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const data = frame.split('\\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\\n');
          if (frame.startsWith('event: cluster') && data) render(JSON.parse(data));
        }
      }
    }
  } catch (e) {
    if (ctl.signal.aborted) return;
  }
  if (stream !== ctl) return;
  status('disconnected; retrying', true);
  setTimeout(connect, 2000);
}

// The default group's page lists the groups (admin), a page at a time, each a link to its own page.
let groupsAfter;
async function groups(more) {
  if (GROUP) return;
  const q = more && groupsAfter ? '?after=' + encodeURIComponent(groupsAfter) : '';
  const res = await fetch('/v1/groups' + q, { headers: headers() }).catch(() => undefined);
  if (!res || !res.ok) return;
  const page = await res.json();
  const rows = page.groups.map((g) => {
    const tr = document.createElement('tr');
    tr.dataset.group = g.name;
    const a = document.createElement('a');
    a.href = '/groups/' + encodeURIComponent(g.name) + '/';
    a.textContent = g.name;
    cell(tr, '').appendChild(a);
    cell(tr, g.size);
    cell(tr, g.state);
    cell(tr, g.created_at);
    return tr;
  });
  if (more) $('groups').append(...rows);
  else $('groups').replaceChildren(...rows);
  groupsAfter = page.next;
  $('more-groups').hidden = !page.more;
  $('groups-box').hidden = false;
}
$('more-groups').onclick = () => groups(true);

if (GROUP) {
  $('group').textContent = '/ ' + GROUP;
  document.title = 'durable-raft: ' + GROUP;
}
$('token').addEventListener('change', () => groups(false));
connect();
setInterval(watchers, 5000);
watchers();
groups(false);
`;
