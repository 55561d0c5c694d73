// The one door to Herald: the public /v2 API on this origin, with the signed-in user's token.
// The token lives in sessionStorage (this tab only, gone when it closes), never in a URL.

const TOKEN_KEY = "herald.token";
const NOTICE_KEY = "herald.signin.notice";
export const SESSION_ENDED = "Your session has ended. Sign in again.";

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem || {};
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// A message for the sign-in page, read once (the 401 path leaves one).
export function takeSignInNotice() {
  const text = sessionStorage.getItem(NOTICE_KEY);
  sessionStorage.removeItem(NOTICE_KEY);
  return text;
}

function url(path, query) {
  const target = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const one of Array.isArray(value) ? value : [value]) target.searchParams.append(name, String(one));
  }
  if (target.origin !== window.location.origin) throw new Error("the console calls only its own origin");
  return target.pathname + target.search;
}

async function body(response) {
  if (response.status === 204 || response.status === 304) return null;
  const type = response.headers.get("Content-Type") || "";
  const text = await response.text();
  if (!text) return null;
  if (type.includes("json")) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

// api(method, path, {body, headers, query}) -> {status, headers, data} for 2xx and 304;
// otherwise throws ApiError. A 401 on a call made with a token ends the session.
export async function api(method, path, { body: payload, headers = {}, query } = {}) {
  const sent = { Accept: "application/json, application/problem+json", ...headers };
  const held = token();
  if (held) sent.Authorization = `Bearer ${held}`;
  const init = { method, headers: sent, credentials: "omit", cache: "no-store", redirect: "error" };
  if (payload !== undefined) {
    if (!Object.keys(sent).some((name) => name.toLowerCase() === "content-type")) sent["Content-Type"] = "application/json";
    init.body = JSON.stringify(payload);
  }
  let response;
  try {
    response = await fetch(url(path, query), init);
  } catch (error) {
    throw new ApiError(0, { title: "Network error", detail: `Herald could not be reached (${error.message}).` });
  }
  const data = await body(response);
  if ((response.status >= 200 && response.status < 300) || response.status === 304) {
    return { status: response.status, headers: response.headers, data };
  }
  const problem = data && typeof data === "object" ? data : { title: response.statusText, detail: data || "" };
  if (response.status === 401 && held) endSession();
  throw new ApiError(response.status, problem);
}

export function endSession(message = SESSION_ENDED) {
  forgetToken();
  if (message) sessionStorage.setItem(NOTICE_KEY, message);
  if (window.location.hash !== "#/signin") window.location.hash = "#/signin";
  else window.dispatchEvent(new HashChangeEvent("hashchange"));
}

// The `next` URL of a Link header (rel="next"), as a path on this origin, or null.
export function nextLink(headers) {
  const link = headers && headers.get("Link");
  if (!link) return null;
  for (const part of link.split(",")) {
    const match = part.match(/<([^>]*)>\s*;\s*rel="?next"?/);
    if (match) {
      const target = new URL(match[1], window.location.origin);
      return target.origin === window.location.origin ? target.pathname + target.search : null;
    }
  }
  return null;
}
