// The one door to the server: JSON in and out, the CSRF header on every change, and errors
// turned into ApiError carrying the problem document's `detail` and `code` (RFC 9457).

/** An answer from the server that is not a success, or no answer at all (status 0). */
export class ApiError extends Error {
  constructor(status, problem) {
    const body = problem && typeof problem === "object" ? problem : {};
    super(body.detail || fallbackMessage(status));
    this.status = status;
    this.code = body.code || (status === 0 ? "network" : "error");
    this.detail = this.message;
    this.errors = Array.isArray(body.errors) ? body.errors : [];
    this.retryAfter = null;
  }
}

function fallbackMessage(status) {
  if (status === 0) return "We couldn't reach DreamTree. Check your connection and try again.";
  if (status === 429) return "That was a lot of tries in a short time. Wait a moment, then try again.";
  if (status >= 500) return "Something went wrong on our side. Nothing you typed is lost; try again in a moment.";
  return "That didn't work. Please check and try again.";
}

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);
let sessionLost = () => {};

/** Called when the server no longer knows this device's session (401 outside a password check). */
export function onSessionLost(callback) {
  sessionLost = callback;
}

export function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === "csrftoken") return rest.join("=");
  }
  return "";
}

/** A JSON body: a value to encode, or `{ text, headers }` sent as it is (a file, unchanged). */
export class RawJSON {
  constructor(text, headers = {}) {
    this.text = text;
    this.headers = headers;
  }
}

async function send(method, path, body) {
  const headers = { Accept: "application/json" };
  if (UNSAFE.has(method)) headers["x-csrftoken"] = csrfToken();
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body instanceof RawJSON) {
    Object.assign(headers, body.headers, { "Content-Type": "application/json" });
    init.body = body.text;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(path, init);
  } catch {
    throw new ApiError(0, null);
  }
}

async function problemOf(response) {
  let problem = null;
  try {
    problem = await response.json();
  } catch {
    problem = null;
  }
  const error = new ApiError(response.status, problem);
  error.retryAfter = response.headers.get("Retry-After");
  return error;
}

/** The raw response of a successful call; an ApiError otherwise. */
export async function request(method, path, body) {
  let response = await send(method, path, body);
  if (response.status === 403 && UNSAFE.has(method)) {
    // The csrftoken cookie can be missing (cleared, or expired with the browser session):
    // any answer from the server sets a new one, so fetch one and try once more.
    const error = await problemOf(response.clone());
    if (error.code === "csrf_failed") {
      await fetch("/healthz", { credentials: "same-origin", cache: "no-store" }).catch(() => null);
      response = await send(method, path, body);
    }
  }
  if (response.ok) return response;
  const error = await problemOf(response);
  if (error.status === 401 && error.code !== "invalid_credentials" && path !== "/api/session") sessionLost(error);
  throw error;
}

/** The decoded JSON of a successful call (null for 204); an ApiError otherwise. */
export async function api(method, path, body) {
  const response = await request(method, path, body);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body);
export const put = (path, body) => api("PUT", path, body);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path, body) => api("DELETE", path, body);

/** Path segments come from content and from the server: always encoded. */
export const seg = (value) => encodeURIComponent(String(value));
