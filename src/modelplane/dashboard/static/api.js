// The public REST API (/api/v1), with the signed-in user's token in the Authorization header.
// The token lives in sessionStorage (this tab only, gone when it closes); never in a URL.

const KEY = "modelplane.token";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error;
    this.hint = body && body.hint;
    this.details = body && body.details;
  }
}

export const session = {
  get token() { return sessionStorage.getItem(KEY); },
  set token(value) {
    if (value) sessionStorage.setItem(KEY, value);
    else sessionStorage.removeItem(KEY);
  },
  info: null, // GET /api/v1/info of the signed-in user
  onUnauthorized: () => {},
};

function headers(extra) {
  const out = { ...(extra || {}) };
  const token = session.token;
  if (token) out.authorization = `Bearer ${token}`;
  return out;
}

async function failure(res) {
  let body = null;
  const text = await res.text();
  try { body = JSON.parse(text); } catch { body = { message: text || res.statusText }; }
  const err = new ApiError(res.status, body);
  if (res.status === 401) session.onUnauthorized(err);
  return err;
}

/** A JSON call. Resolves to the parsed body (null for 204); rejects with ApiError. */
export async function api(method, path, body) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (exc) {
    throw new ApiError(0, { message: "The platform cannot be reached", hint: "Is `modelplane up` still running?" });
  }
  if (!res.ok) throw await failure(res);
  if (res.status === 204) return null;
  return res.json();
}

/** A raw call (predictions, downloads): resolves to the Response, whatever its type. */
export async function raw(method, path, body, contentType) {
  const init = { method, headers: headers(contentType ? { "content-type": contentType } : {}), body };
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, { message: "The platform cannot be reached" });
  }
  if (!res.ok) throw await failure(res);
  return res;
}

/** Send a body with upload progress (fetch has none): onProgress(fraction 0..1). */
export function upload(method, path, body, contentType, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    const h = headers(contentType ? { "content-type": contentType } : {});
    for (const [k, v] of Object.entries(h)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total); };
    xhr.onerror = () => reject(new ApiError(0, { message: "The upload was interrupted" }));
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { data = { message: xhr.responseText }; }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else {
        const err = new ApiError(xhr.status, data);
        if (xhr.status === 401) session.onUnauthorized(err);
        reject(err);
      }
    };
    xhr.send(body);
  });
}

let openapi = null;
/** Whether the platform's API has an operation (features that other work may add later). */
export async function hasOperation(method, path) {
  if (!openapi) {
    try { openapi = await (await fetch("/openapi.json")).json(); } catch { openapi = { paths: {} }; }
  }
  const op = openapi.paths && openapi.paths[path];
  return Boolean(op && op[method.toLowerCase()]);
}

export const enc = encodeURIComponent;
export function keyPath(key) { return key.split("/").map(encodeURIComponent).join("/"); }
