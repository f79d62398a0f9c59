// api.js: the console's HTTP client. Every call is same-origin and carries
// the session cookie (HttpOnly: the page never sees it). Both error shapes
// are understood: the native {"error":{"code","message"}} and SEMOSS's
// {"errorMessage","errorType"}.

let csrfToken = '';
let onUnauthorized = () => {};

// setCSRF keeps the session's CSRF token (GET /Monolith/api/config hands it
// out when the server runs with CSRF protection); it is sent on every POST.
export function setCSRF(token) { csrfToken = token || ''; }

// setUnauthorizedHandler is called on any 401, so the app can ask for a login.
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function parse(res, { quiet401 = false } = {}) {
  const type = res.headers.get('Content-Type') || '';
  let body = null;
  if (type.includes('json')) {
    try { body = await res.json(); } catch { body = null; }
  } else {
    await res.text().catch(() => '');
  }
  if (res.ok) return body;
  const err = (body && body.error) || {};
  const message = err.message || (body && body.errorMessage) || `${res.status} ${res.statusText}`;
  const code = err.code || (body && body.errorType) || String(res.status);
  if (res.status === 401 && !quiet401) onUnauthorized(message);
  throw new APIError(res.status, code, message);
}

function headers(extra = {}) {
  const h = { Accept: 'application/json', ...extra };
  if (csrfToken) h['X-CSRF-Token'] = csrfToken;
  return h;
}

export async function getJSON(path, { signal, quiet401 } = {}) {
  const res = await fetch(path, { headers: headers(), credentials: 'same-origin', signal, cache: 'no-store' });
  return parse(res, { quiet401 });
}

export async function postJSON(path, body, { signal } = {}) {
  const res = await fetch(path, {
    method: 'POST', credentials: 'same-origin', signal,
    headers: headers({ 'Content-Type': 'application/json' }),
    body: JSON.stringify(body),
  });
  return parse(res);
}

export async function postForm(path, fields, { signal, quiet401 } = {}) {
  const res = await fetch(path, {
    method: 'POST', credentials: 'same-origin', signal,
    headers: headers({ 'Content-Type': 'application/x-www-form-urlencoded' }),
    body: new URLSearchParams(fields),
  });
  return parse(res, { quiet401 });
}

// optional GETs a route that another server version may not have: null on
// 404, 405 and 501 (the feature is absent), the body on 200, and any other
// failure thrown.
export async function optional(path, { signal } = {}) {
  try {
    return await getJSON(path, { signal });
  } catch (e) {
    if (e instanceof APIError && [404, 405, 501].includes(e.status)) return null;
    throw e;
  }
}
