// transports.js: the three ways to read a job's chunks, behind one shape.
//
//   follow(kind, jobId, sink, signal) -> Promise<{status, finish_reason}>
//
// sink.next() is the offset to read from (the first seq not yet applied),
// sink.chunk(c) applies one chunk {seq, stream_type, data, created_at?},
// sink.status(status) reports the job's (native) status as the transport
// sees it. Every transport resumes from sink.next() after a failure, so
// nothing is missed and nothing applied twice (the sink also drops any seq
// it has already seen). The promise resolves when the job has ended and
// every chunk was read, and rejects with an AbortError when signal aborts.

import { postForm, getJSON, APIError } from './api.js';

export const TRANSPORTS = {
  sse: 'SSE',
  longpoll: 'native long-poll',
  semoss: 'SEMOSS pixelJobStreaming',
};

// The longest wait we ask of a long-poll; the server caps it at its own
// --max-wait.
const WAIT_SECONDS = 25;

const NATIVE_TERMINAL = new Set(['completed', 'failed', 'cancelled']);
export function isTerminal(status) { return NATIVE_TERMINAL.has(status); }

// SEMOSS statuses onto native ones (PixelJobStatus in SEMOSS).
const FROM_SEMOSS = {
  Created: 'queued', Submitted: 'queued', InProgress: 'running', Streaming: 'running', Paused: 'running',
  ProgressComplete: 'completed', Complete: 'completed', Error: 'failed', Canceled: 'cancelled',
};

function aborted() { return new DOMException('aborted', 'AbortError'); }

function delay(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) { reject(aborted()); return; }
    const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(aborted()); };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

// retrying runs one read loop, and after a failure that is not the
// client's (network error, 5xx, a stream cut), resumes it from sink.next()
// with backoff. 4xx errors (401, 404, ...) are final.
async function retrying(loop, sink, signal) {
  let backoff = 250;
  for (;;) {
    try {
      return await loop();
    } catch (e) {
      if (signal.aborted || e.name === 'AbortError') throw aborted();
      if (e instanceof APIError && e.status >= 400 && e.status < 500 && e.status !== 429) throw e;
      sink.retry?.(e);
      await delay(backoff, signal);
      backoff = Math.min(backoff * 2, 4000);
    }
  }
}

async function longPoll(id, sink, signal) {
  return retrying(async () => {
    for (;;) {
      const page = await getJSON(`/v1/jobs/${id}/chunks?offset=${sink.next()}&wait=${WAIT_SECONDS}`, { signal });
      for (const c of page.chunks) sink.chunk(c);
      sink.status(page.status);
      if (isTerminal(page.status) && !page.more) return { status: page.status, finish_reason: page.finish_reason };
    }
  }, sink, signal);
}

async function semoss(id, sink, signal) {
  return retrying(async () => {
    for (;;) {
      const from = sink.next();
      const r = await postForm('/Monolith/api/engine/pixelJobStreaming',
        { jobId: id, offset: String(from), wait: String(WAIT_SECONDS) }, { signal });
      if (r.status === 'UnknownJob') throw new APIError(404, 'UnknownJob', `pixelJobStreaming: job ${id} is unknown to this key`);
      // Messages carry no seq: they are consecutive from the offset asked.
      r.message.forEach((m, i) => sink.chunk({ seq: from + i, stream_type: m.stream_type, data: m.data }));
      const status = FROM_SEMOSS[r.status] || 'running';
      sink.status(status, r.status);
      if (isTerminal(status)) return { status };
    }
  }, sink, signal);
}

// sse reads /v1/jobs/{id}/events with EventSource, which reconnects by
// itself with Last-Event-ID after a cut; a stream the server ends with an
// "error" event, or that cannot be opened, is reopened from sink.next().
async function sse(id, sink, signal) {
  return retrying(() => new Promise((resolve, reject) => {
    const es = new EventSource(`/v1/jobs/${id}/events?offset=${sink.next()}`);
    const done = (fn, v) => { es.close(); signal.removeEventListener('abort', onAbort); fn(v); };
    const onAbort = () => done(reject, aborted());
    signal.addEventListener('abort', onAbort, { once: true });
    es.addEventListener('open', () => sink.connected?.());
    es.addEventListener('chunk', ev => {
      const c = JSON.parse(ev.data);
      sink.chunk(c);
    });
    es.addEventListener('end', ev => {
      const end = JSON.parse(ev.data);
      sink.status(end.status);
      done(resolve, { status: end.status, finish_reason: end.finish_reason });
    });
    es.addEventListener('error', ev => {
      if (ev.data) { // the server's own "error" event: it gave up reading
        done(reject, new Error(JSON.parse(ev.data).message || 'the event stream failed'));
        return;
      }
      if (es.readyState === EventSource.CLOSED) {
        // Refused (401, 404, ...): EventSource does not say why, the
        // job record does.
        es.close();
        getJSON(`/v1/jobs/${id}`, { signal }).then(
          () => done(reject, new Error('the event stream could not be opened')),
          e => done(reject, e));
      }
      // CONNECTING: the browser reconnects with Last-Event-ID.
    });
  }), sink, signal);
}

const impl = { sse, longpoll: longPoll, semoss };

export function follow(kind, id, sink, signal) {
  return (impl[kind] || impl.sse)(id, sink, signal);
}
