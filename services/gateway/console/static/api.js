// The Jobs API as the console uses it: the API key of this tab (sessionStorage, so it is
// gone when the tab closes), and one `api()` call that turns every answer into data or an
// ApiError carrying the status, the field errors and the rate-limit headers.

const KEY = "conveyor.apiKey";
const TIMEOUT_MS = 20000;

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  signIn(key) { sessionStorage.setItem(KEY, key); },
  signOut() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, body, headers) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.errors = (body && body.errors) || [];
    const retry = Number(headers.get("Retry-After"));
    this.retryAfter = Number.isFinite(retry) && retry > 0 ? retry : null;
  }
}

// Called when the key is refused (401): the console goes back to its sign-in form.
let onUnauthorized = () => {};
export function whenUnauthorized(callback) { onUnauthorized = callback; }

// `body`: an object (sent as JSON) or a string (sent as it is: pasted JSON goes to the API
// unparsed, so the API's own message names what is wrong with it). `headers`: more of them.
export async function api(method, path, body, extraHeaders = {}) {
  const headers = { Authorization: `api-key ${session.key}`, Accept: "application/json", ...extraHeaders };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  // A read from a gateway that hangs must not freeze the page: it fails, and its poller
  // waits and asks again. A change (POST) is never cut short: it may be done already, and
  // giving up would only hide that.
  const timeout = new AbortController();
  const timer = method === "GET" ? setTimeout(() => timeout.abort(), TIMEOUT_MS) : null;
  init.signal = timeout.signal;
  let response;
  let data;
  try {
    response = await fetch(path, init);
    data = await response.json().catch((error) => {
      if (timeout.signal.aborted) throw error; // cut short while reading: not an empty answer
      return null;
    });
  } catch (error) {
    const why = timeout.signal.aborted ? `no answer within ${TIMEOUT_MS / 1000} s` : error.message;
    throw new ApiError(0, { error: `the gateway did not answer (${why})` }, new Headers());
  } finally {
    clearTimeout(timer);
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data, response.headers);
    if (response.status === 401) onUnauthorized(error);
    throw error;
  }
  return { data, headers: response.headers, status: response.status };
}

export const STATUSES = ["Queued", "Running", "Completed", "Failed", "Cancelled", "Suspended"];
export const FINAL = new Set([2, 3, 4]);
