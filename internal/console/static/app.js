// app.js: the console's entry point: session, routing and the submit and
// history pages (job.js is the job page).
//
// Routes live in the URL's fragment, so every page has a shareable address
// and a reload lands where it was:
//   #/                  submit a job
//   #/job/<id>?from=N   one job, read from offset N (default 0)
//   #/history?status=&engine=&since=&until=&limit=&before=
//   #/login

import { getJSON, postJSON, postForm, setCSRF, setUnauthorizedHandler, APIError } from './api.js';
import { openJob, leaveJob, stopJob, switchTransport, submitted } from './job.js';
import { TRANSPORTS } from './transports.js';
import { $, show, text, fmtTime, toLocalInput, fromLocalInput } from './dom.js';

// The one thing the console keeps in localStorage.
const TRANSPORT_KEY = 'jobstream.transport';

const VIEWS = ['login', 'submit', 'job', 'history'];

const state = {
  loggedIn: false,
  name: '',
  anonymous: false,
  engines: [],
  returnTo: '',
  flash: '', // a notice for the next page shown
  olderStack: [], // history: the `before` cursors of the pages we came from
  historyGen: 0, // history: the latest list load; older answers are dropped
};

function transport() {
  const t = localStorage.getItem(TRANSPORT_KEY);
  return t in TRANSPORTS ? t : 'sse';
}

function current(el, on) {
  if (on) el.setAttribute('aria-current', 'page'); else el.removeAttribute('aria-current');
}

function showView(name) {
  for (const v of VIEWS) show($(`view-${v}`), v === name);
  show($('boot'), false);
  document.body.dataset.view = name;
  current($('nav-new'), name === 'submit');
  current($('nav-history'), name === 'history');
}

function notice(msg) {
  text($('notice'), msg || '');
  show($('notice'), !!msg);
}

// session asks GET /Monolith/api/config who we are: it never answers 401,
// and in --dev it starts an anonymous session for a browser without one.
async function session() {
  const cfg = await getJSON('/Monolith/api/config', { quiet401: true });
  const details = cfg.loginDetails || {};
  const name = details.native || Object.values(details)[0] || '';
  setCSRF(cfg['X-CSRF-Token'] || '');
  state.loggedIn = !!name;
  state.name = name;
  state.anonymous = name.startsWith('anonymous');
  renderSession();
  if (state.loggedIn) await loadEngines();
}

function renderSession() {
  text($('whoami'), state.loggedIn ? `Signed in: ${state.name}` : 'Not signed in');
  show($('logout'), state.loggedIn);
  show($('login-link'), state.loggedIn && state.anonymous);
}

async function loadEngines() {
  try {
    const body = await getJSON('/v1/engines');
    state.engines = body.engines || [];
  } catch (e) {
    state.engines = [];
    notice(`Cannot list engines: ${e.message}`);
  }
  const opts = sel => state.engines.map(en => {
    const o = document.createElement('option');
    o.value = en.id;
    o.textContent = en.model ? `${en.id} (${en.provider}: ${en.model})` : `${en.id} (${en.provider})`;
    return o;
  });
  const keep = $('engine').value;
  $('engine').replaceChildren(...opts());
  if (keep) $('engine').value = keep;
  const any = document.createElement('option');
  any.value = ''; any.textContent = 'any';
  $('f-engine').replaceChildren(any, ...opts());
}

// --- routing ---------------------------------------------------------------

// go shows the page at hash, also when it is the one in the address bar
// already (which fires no hashchange).
function go(hash) {
  if (location.hash === hash || (hash === '#/' && location.hash === '')) route(); else location.hash = hash;
}

function parseHash() {
  const h = location.hash.replace(/^#/, '') || '/';
  const i = h.indexOf('?');
  const path = i < 0 ? h : h.slice(0, i);
  return { path, q: new URLSearchParams(i < 0 ? '' : h.slice(i + 1)) };
}

function route() {
  const { path, q } = parseHash();
  notice(state.flash);
  state.flash = '';
  if (path === '/login' || !state.loggedIn) {
    leaveJob();
    if (path !== '/login') state.returnTo = location.hash;
    showLogin();
    return;
  }
  const m = path.match(/^\/job\/([0-9a-fA-F-]{36})$/);
  if (m) {
    showView('job');
    const from = Math.max(0, parseInt(q.get('from') || '0', 10) || 0);
    openJob(m[1].toLowerCase(), from, transport());
    return;
  }
  leaveJob();
  if (path === '/history') {
    showView('history');
    loadHistory(q);
    return;
  }
  showView('submit');
}

// --- login -----------------------------------------------------------------

function showLogin() {
  showView('login');
  show($('login-error'), false);
  $('access-key').focus();
}

async function login(ev) {
  ev.preventDefault();
  const user = $('access-key').value.trim();
  const pass = $('secret-key').value;
  const err = $('login-error');
  show(err, false);
  if (!user || !pass) {
    text(err, 'Enter both the access key and the secret key.');
    show(err, true);
    return;
  }
  $('login-submit').disabled = true;
  try {
    await postForm('/Monolith/api/auth/login', { username: user, password: pass, disableRedirect: 'true' }, { quiet401: true });
    $('secret-key').value = '';
    await session();
    if (!state.loggedIn) throw new Error('the server accepted the keys but started no session');
    const back = state.returnTo && !state.returnTo.startsWith('#/login') ? state.returnTo : '#/';
    state.returnTo = '';
    go(back);
  } catch (e) {
    const msg = e instanceof APIError && e.status === 401
      ? 'Wrong access key or secret key: the server refused them. Check both and try again.'
      : `Login failed: ${e.message}`;
    text(err, msg);
    show(err, true);
    $('secret-key').focus();
  } finally {
    $('login-submit').disabled = false;
  }
}

// anonymous continues without keys, which only a --dev server allows.
async function anonymous() {
  const err = $('login-error');
  show(err, false);
  try {
    await session();
  } catch (e) {
    text(err, `Cannot reach the server: ${e.message}`);
    show(err, true);
    return;
  }
  if (!state.loggedIn) {
    text(err, 'This server needs an API key: it does not let anonymous requests in (that is --dev only).');
    show(err, true);
    return;
  }
  go('#/');
}

async function logout() {
  leaveJob();
  try {
    await postForm('/Monolith/api/logout/all', {});
  } catch (e) {
    notice(`Logout failed: ${e.message}`);
    return;
  }
  setCSRF('');
  state.loggedIn = false;
  state.name = '';
  renderSession();
  state.returnTo = '';
  state.flash = 'Logged out.';
  go('#/login');
}

setUnauthorizedHandler(message => {
  if (!state.loggedIn) return;
  state.loggedIn = false;
  renderSession();
  state.returnTo = location.hash;
  leaveJob();
  showLogin();
  notice(`Your session has ended (${message}). Log in again.`);
});

// --- submit ----------------------------------------------------------------

const EXAMPLE_TOOLS = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city'],
    },
  },
}];

function submitError(msg) {
  const el = $('submit-error');
  text(el, msg);
  show(el, !!msg);
}

async function submit(ev) {
  ev.preventDefault();
  submitError('');
  const prompt = $('prompt').value;
  if (!prompt.trim()) { submitError('Write a prompt first.'); $('prompt').focus(); return; }
  let params;
  try {
    params = JSON.parse($('params').value.trim() || '{}');
  } catch (e) {
    submitError(`Params are not valid JSON: ${e.message}`); $('params').focus(); return;
  }
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    submitError('Params must be a JSON object, like {"temperature": 0.3}.'); $('params').focus(); return;
  }
  const toolsText = $('tools').value.trim();
  if (toolsText) {
    let tools;
    try { tools = JSON.parse(toolsText); } catch (e) {
      submitError(`Tools are not valid JSON: ${e.message}`); $('tools').focus(); return;
    }
    if (!Array.isArray(tools)) { submitError('Tools must be a JSON list of {"type":"function","function":{...}}.'); $('tools').focus(); return; }
    params.tools = tools;
  }
  const body = { engine: $('engine').value, command: prompt, params };
  if ($('system').value.trim()) body.system = $('system').value;
  $('submit').disabled = true;
  try {
    const at = performance.timeOrigin + performance.now();
    const job = await postJSON('/v1/jobs', body);
    submitted.set(job.id, at);
    location.hash = `#/job/${job.id}`;
  } catch (e) {
    submitError(`The server refused the job: ${e.message}`);
  } finally {
    $('submit').disabled = false;
  }
}

// --- history ---------------------------------------------------------------

const FILTERS = ['status', 'engine', 'since', 'until', 'limit'];

function historyHash(filters, before) {
  const q = new URLSearchParams();
  for (const k of FILTERS) if (filters[k]) q.set(k, filters[k]);
  if (before) q.set('before', before);
  const s = q.toString();
  return s ? `#/history?${s}` : '#/history';
}

function currentFilters(q) {
  const f = {};
  for (const k of FILTERS) f[k] = q.get(k) || '';
  return f;
}

async function loadHistory(q) {
  const f = currentFilters(q);
  $('f-status').value = f.status;
  $('f-engine').value = f.engine;
  $('f-since').value = f.since ? toLocalInput(f.since) : '';
  $('f-until').value = f.until ? toLocalInput(f.until) : '';
  $('f-limit').value = f.limit || '25';
  const table = $('history-table');
  table.dataset.state = 'loading';
  show($('history-error'), false);
  const api = new URLSearchParams();
  for (const k of FILTERS) if (f[k]) api.set(k, f[k]);
  if (!f.limit) api.set('limit', '25');
  const before = q.get('before');
  if (before) api.set('before', before);
  // A later load (another click, another hash) supersedes this one: an
  // answer that arrives after it must not overwrite the newer list.
  const gen = ++state.historyGen;
  let list;
  try {
    list = await getJSON(`/v1/jobs?${api}`);
    if (gen !== state.historyGen) return;
  } catch (e) {
    if (gen !== state.historyGen) return;
    text($('history-error'), `Cannot list jobs: ${e.message}`);
    show($('history-error'), true);
    table.dataset.state = 'error';
    $('history-rows').replaceChildren();
    return;
  }
  const rows = list.jobs.map(j => {
    const tr = document.createElement('tr');
    tr.dataset.job = j.id;
    const cell = (v, cls) => { const td = document.createElement('td'); if (cls) td.className = cls; td.append(v); return td; };
    const a = document.createElement('a');
    a.href = `#/job/${j.id}`;
    const code = document.createElement('code');
    code.textContent = j.id;
    a.append(code);
    const badge = document.createElement('span');
    badge.className = `badge ${j.status}`;
    badge.textContent = j.status;
    const out = j.usage && j.usage.output_tokens !== undefined ? String(j.usage.output_tokens) : '–';
    tr.append(cell(fmtTime(j.created_at)), cell(a), cell(j.engine), cell(badge), cell(j.finish_reason || '–'), cell(out));
    return tr;
  });
  $('history-rows').replaceChildren(...rows);
  show($('history-empty'), rows.length === 0);
  const older = $('history-older');
  older.disabled = !list.next_before;
  older.onclick = () => {
    state.olderStack.push(before || '');
    location.hash = historyHash(f, list.next_before);
  };
  const newer = $('history-newer');
  newer.disabled = !before;
  newer.onclick = () => {
    const prev = state.olderStack.length ? state.olderStack.pop() : '';
    location.hash = historyHash(f, prev);
  };
  table.dataset.state = 'loaded';
}

function applyFilters(ev) {
  ev.preventDefault();
  state.olderStack = [];
  const f = {
    status: $('f-status').value,
    engine: $('f-engine').value,
    since: fromLocalInput($('f-since').value),
    until: fromLocalInput($('f-until').value),
    limit: $('f-limit').value === '25' ? '' : $('f-limit').value,
  };
  go(historyHash(f, ''));
}

// --- start -----------------------------------------------------------------

function wire() {
  const sel = $('transport');
  sel.value = transport();
  sel.addEventListener('change', () => {
    localStorage.setItem(TRANSPORT_KEY, sel.value);
    switchTransport(sel.value);
  });
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('login-anonymous').addEventListener('click', anonymous);
  $('submit-form').addEventListener('submit', submit);
  $('prompt').addEventListener('keydown', ev => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) $('submit-form').requestSubmit();
  });
  $('tools-example').addEventListener('click', () => { $('tools').value = JSON.stringify(EXAMPLE_TOOLS, null, 2); });
  $('stop').addEventListener('click', stopJob);
  $('replay-form').addEventListener('submit', ev => {
    ev.preventDefault();
    const id = $('view-job').dataset.job;
    const n = Math.max(0, parseInt($('replay-offset').value, 10) || 0);
    go(`#/job/${id}?from=${n}`);
  });
  $('history-filters').addEventListener('submit', applyFilters);
  window.addEventListener('hashchange', route);
}

async function start() {
  wire();
  try {
    await session();
  } catch (e) {
    show($('boot'), false);
    notice(`Cannot reach the server: ${e.message}`);
    return;
  }
  route();
  document.body.dataset.ready = 'true';
}

start();
