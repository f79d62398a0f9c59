// job.js: one job's page. It reads the job from an offset (0 unless the
// URL says ?from=N) with the chosen transport, and shows its content,
// thinking and tool calls as they arrive, with the status, finish reason,
// usage, time to first token and tokens/s. Opened on a running job it
// catches up from the offset and then follows; opened on a finished one it
// replays it. Stop cancels the job for real (POST /v1/jobs/{id}/cancel).

import { getJSON, postJSON, optional, APIError } from './api.js';
import { follow, isTerminal, TRANSPORTS } from './transports.js';
import { $, show, text, fmtMs, fmtTime } from './dom.js';

// The audit trail's route (job_events): optional, shown when it answers.
const EVENTS_PATH = id => `/v1/jobs/${id}/audit`;
// The hash-chain check's route: optional, shown when it answers 200.
const VERIFY_PATH = id => `/v1/jobs/${id}/verify`;

let current = null; // the page on screen: {id, abort: AbortController, ...}

// live reports whether p is still the page on screen. Every answer that
// arrives after an await checks it before it touches the view: a page the
// reader has left (another job, a replay from an offset, history) must not
// write a late answer over the newer page. Aborting p's reads is not
// enough: an aborted read settles too, and requests without p's signal
// (Stop's cancel) go on.
function live(p) { return p === current; }

// stop ends the page's reads (leaving the job alone).
export function leaveJob() {
  if (current) current.ctl.abort();
  current = null;
}

export function openJob(id, from, transport) {
  leaveJob();
  const page = newPage(id, from, transport);
  current = page;
  resetView(page);
  run(page);
  return page;
}

// switchTransport continues the page on screen with another transport,
// from where it stands.
export function switchTransport(transport) {
  if (!current || current.ended) return;
  current.ctl.abort();
  current.ctl = new AbortController();
  current.transport = transport;
  text($('job-transport'), TRANSPORTS[transport]);
  read(current);
}

function newPage(id, from, transport) {
  return {
    id, from, transport,
    ctl: new AbortController(),
    next: from,          // first seq not yet applied
    count: 0,            // chunks applied
    tokens: 0,           // content/thinking/tool deltas applied
    firstAt: null,       // server time of the first output chunk (ms)
    firstSeen: null,     // browser time of the first output chunk (ms)
    lastAt: null, lastSeen: null,
    job: null, usage: null, finish: '', status: '', ended: false,
    tools: new Map(),    // index -> {li, name, id, args}
    gap: false,
    submittedAt: submitted.get(id) || null,
  };
}

function resetView(p) {
  const v = $('view-job');
  v.dataset.stream = 'reading';
  v.dataset.job = p.id;
  v.dataset.from = String(p.from);
  delete v.dataset.extras;
  text($('job-id'), p.id);
  text($('job-status'), '…');
  $('job-status').className = 'badge';
  for (const k of ['job-finish', 'job-engine', 'job-ttft', 'job-tps', 'job-usage']) text($(k), '–');
  text($('job-chunks'), '0');
  text($('job-transport'), TRANSPORTS[p.transport]);
  $('content').replaceChildren();
  $('thinking').replaceChildren();
  $('tool-calls').replaceChildren();
  $('transcript').replaceChildren();
  $('events').replaceChildren();
  show($('thinking-box'), false);
  show($('tools-box'), false);
  show($('verify-box'), false);
  show($('events-box'), false);
  $('transcript-box').open = false;
  show($('job-error'), false);
  const fromNote = $('job-from');
  text(fromNote, `Replaying from offset ${p.from}: chunks before it are not shown.`);
  show(fromNote, p.from > 0);
  $('replay-offset').value = String(p.from);
  $('share-link').href = `#/job/${p.id}`;
  $('stop').disabled = true;
}

async function run(p) {
  try {
    p.job = await getJSON(`/v1/jobs/${p.id}`, { signal: p.ctl.signal });
  } catch (e) {
    if (e.name === 'AbortError' || !live(p)) return;
    fail(p, e);
    return;
  }
  if (!live(p)) return;
  text($('job-engine'), p.job.engine);
  setStatus(p, p.job.status);
  read(p);
}

async function read(p) {
  const ctl = p.ctl;
  // A read that was aborted (the page left, or another transport took
  // over) applies nothing more, whatever its transport still delivers.
  const on = () => !ctl.signal.aborted && live(p);
  const sink = {
    next: () => p.next,
    chunk: c => on() && apply(p, c),
    status: s => on() && setStatus(p, s),
    retry: e => on() && note(p, `Reconnecting after: ${e.message}`),
    connected: () => on() && show($('job-error'), false),
  };
  try {
    await follow(p.transport, p.id, sink, ctl.signal);
  } catch (e) {
    if (e.name === 'AbortError' || ctl.signal.aborted) return;
    fail(p, e);
    return;
  }
  if (ctl.signal.aborted) return;
  await finish(p);
}

// apply adds one chunk to the page: chunks are applied in seq order, once.
function apply(p, c) {
  if (c.seq < p.next) return; // already shown (a resumed stream repeats nothing, but be sure)
  if (c.seq > p.next && !p.gap) {
    p.gap = true;
    note(p, `Chunks ${p.next}..${c.seq - 1} are missing from this read.`);
  }
  p.next = c.seq + 1;
  p.count++;
  const d = c.data || {};
  let output = false;
  switch (c.stream_type) {
    case 'content':
      if (typeof d.content === 'string' && d.content !== '') {
        $('content').append(d.content);
        output = true;
      }
      break;
    case 'thinking':
      if (typeof d.thinking === 'string' && d.thinking !== '') {
        if ($('thinking-box').hidden) {
          // Open on the first delta; the reader may close it.
          show($('thinking-box'), true);
          $('thinking-box').open = true;
        }
        $('thinking').append(d.thinking);
        output = true;
      }
      break;
    case 'tool':
      if (d.index !== undefined && d.index !== null) {
        toolDelta(p, d);
        output = true;
      }
      break;
    case 'usage':
      p.usage = d;
      break;
  }
  if (typeof d.finish_reason === 'string') {
    p.finish = d.finish_reason;
    text($('job-finish'), d.finish_reason);
    if (d.error && d.error.message) note(p, `The model call failed: ${d.error.message}`);
  }
  if (output) {
    p.tokens++;
    const at = c.created_at ? Date.parse(c.created_at) : null;
    const seen = performance.timeOrigin + performance.now();
    if (p.firstSeen === null) { p.firstAt = at; p.firstSeen = seen; }
    p.lastAt = at; p.lastSeen = seen;
  }
  if (p.status === 'queued') setStatus(p, 'running');
  stats(p);
}

function toolDelta(p, d) {
  let t = p.tools.get(d.index);
  if (!t) {
    const li = document.createElement('li');
    li.className = 'tool';
    li.dataset.index = String(d.index);
    const name = document.createElement('span'); name.className = 'tool-name';
    const id = document.createElement('code'); id.className = 'tool-id';
    const args = document.createElement('pre'); args.className = 'tool-args';
    li.append(name, id, args);
    $('tool-calls').append(li);
    show($('tools-box'), true);
    t = { li, nameEl: name, idEl: id, argsEl: args, args: '' };
    p.tools.set(d.index, t);
  }
  if (typeof d.id === 'string') text(t.idEl, d.id);
  const fn = d.function || {};
  if (typeof fn.name === 'string') text(t.nameEl, fn.name);
  if (typeof fn.arguments === 'string') {
    t.args += fn.arguments;
    t.argsEl.append(fn.arguments);
  }
}

function setStatus(p, status) {
  if (!status || status === p.status) return;
  p.status = status;
  const el = $('job-status');
  text(el, status);
  el.className = `badge ${status}`;
  $('stop').disabled = isTerminal(status);
}

function stats(p) {
  text($('job-chunks'), String(p.count));
  const created = p.job ? Date.parse(p.job.created_at) : null;
  if (p.firstAt !== null && created !== null && p.from === 0) {
    text($('job-ttft'), fmtMs(p.firstAt - created));
  } else if (p.firstSeen !== null && p.submittedAt) {
    text($('job-ttft'), `${fmtMs(p.firstSeen - p.submittedAt)} (seen here)`);
  }
  const tokens = (p.usage && p.usage.output_tokens) || p.tokens;
  const span = p.firstAt !== null && p.lastAt !== null ? p.lastAt - p.firstAt : p.lastSeen - p.firstSeen;
  if (p.tokens > 1 && span > 0) text($('job-tps'), (tokens / (span / 1000)).toFixed(1));
  if (p.usage) text($('job-usage'), `${p.usage.input_tokens ?? '?'} / ${p.usage.output_tokens ?? '?'}`);
}

// finish runs once every chunk was read: the job record has the final
// usage, finish reason and error; the transcript, audit events and
// verification are fetched for the record.
async function finish(p) {
  p.ended = true;
  const signal = p.ctl.signal;
  try {
    const job = await getJSON(`/v1/jobs/${p.id}`, { signal });
    if (!live(p)) return;
    p.job = job;
    setStatus(p, job.status);
    if (job.finish_reason) text($('job-finish'), job.finish_reason);
    if (job.usage && !p.usage) p.usage = job.usage;
    if (job.error && job.error.message) note(p, `The job failed: ${job.error.message}`);
    stats(p);
  } catch (e) {
    if (e.name === 'AbortError' || !live(p)) return;
    note(p, e.message);
  }
  $('view-job').dataset.stream = 'ended';
  $('stop').disabled = true;
  loadExtras(p);
}

async function loadExtras(p) {
  const signal = p.ctl.signal;
  // Leaving the page aborts these reads, which settles them at once: the
  // page left must not then mark the newer page's extras loaded.
  await Promise.allSettled([
    getJSON(`/v1/jobs/${p.id}/transcript`, { signal }).then(t => live(p) && renderTranscript(t)),
    optional(VERIFY_PATH(p.id), { signal }).then(v => live(p) && renderVerify(v)),
    optional(EVENTS_PATH(p.id), { signal }).then(ev => live(p) && renderEvents(ev)),
  ]);
  if (!live(p)) return;
  $('view-job').dataset.extras = 'loaded';
}

function renderTranscript(t) {
  const parts = [];
  if (t.thinking) parts.push(`thinking:\n${t.thinking}\n`);
  parts.push(`content:\n${t.content}`);
  if (t.tool_calls && t.tool_calls.length) parts.push(`\ntool_calls:\n${JSON.stringify(t.tool_calls, null, 2)}`);
  text($('transcript'), parts.join('\n'));
}

function renderVerify(v) {
  if (!v || typeof v.ok !== 'boolean') return;
  const el = $('verify-result');
  el.replaceChildren();
  const s = document.createElement('span');
  if (v.ok) {
    s.className = 'verify-ok';
    s.textContent = `Hash chain intact over ${v.chunks} chunks.`;
  } else {
    s.className = 'verify-bad';
    s.textContent = `Hash chain broken${v.first_bad_seq !== undefined && v.first_bad_seq !== null ? ` at seq ${v.first_bad_seq}` : ''}: ${v.reason || 'no reason given'}.`;
  }
  el.append(s);
  show($('verify-box'), true);
}

function renderEvents(body) {
  const list = Array.isArray(body) ? body : body && Array.isArray(body.events) ? body.events : null;
  if (!list) return;
  const rows = list.map(ev => {
    const tr = document.createElement('tr');
    const actor = ev.actor && typeof ev.actor === 'object' ? JSON.stringify(ev.actor) : (ev.actor ?? '');
    const rest = { ...ev };
    for (const k of ['at', 'created_at', 'time', 'type', 'kind', 'event', 'actor', 'job_id', 'id']) delete rest[k];
    for (const v of [fmtTime(ev.at || ev.created_at || ev.time), ev.type || ev.kind || ev.event || '', actor,
      Object.keys(rest).length ? JSON.stringify(rest) : '']) {
      const td = document.createElement('td');
      td.textContent = String(v);
      tr.append(td);
    }
    return tr;
  });
  $('events').replaceChildren(...rows);
  show($('events-box'), true);
}

function note(p, msg) {
  const el = $('job-error');
  text(el, msg);
  show(el, true);
}

function fail(p, e) {
  $('view-job').dataset.stream = 'error';
  $('stop').disabled = true;
  const msg = e instanceof APIError && e.status === 404 ? `Job ${p.id} was not found (for this key).` : e.message;
  note(p, msg);
}

// stopJob asks the server to cancel the job on screen; the stream then
// ends with the finish reason "cancelled".
export async function stopJob() {
  const p = current;
  if (!p) return;
  $('stop').disabled = true;
  try {
    const job = await postJSON(`/v1/jobs/${p.id}/cancel`, {});
    // The cancel carries no signal of the page: it goes on (the job is
    // cancelled) after the reader left for another page, whose status
    // its answer must not overwrite.
    if (!live(p)) return;
    if (job && job.status) setStatus(p, job.status);
  } catch (e) {
    if (!live(p)) return;
    if (e instanceof APIError && e.status === 409) return; // it had already finished
    note(p, `Stop failed: ${e.message}`);
    $('stop').disabled = isTerminal(p.status);
  }
}

// submitted holds when this browser submitted a job (id -> ms), so that
// transports without chunk timestamps (SEMOSS) still show a time to first
// token, as seen here.
export const submitted = new Map();
