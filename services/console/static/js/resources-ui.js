// Helpers the event, location and user pages share beyond ui.js: times for datetime-local
// inputs, the API's keyset paging (Link: rel="next"), and what the event workflow lets a user do.

import { el } from "./ui.js";

const pad = (n) => String(n).padStart(2, "0");

/** A datetime-local value (the browser's zone) as RFC 3339 with that zone's offset, or null. */
export function localToRfc3339(value) {
  if (!value) return null;
  const moment = new Date(value);
  if (Number.isNaN(moment.getTime())) return value; // the API names the field in its 422
  const offset = -moment.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  const seconds = value.length === 16 ? `${value}:00` : value;
  return `${seconds}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** An RFC 3339 time as a datetime-local value in the browser's zone. */
export function isoToLocal(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The cursor of the next page from a response's Link header, or null on the last page. */
export function nextCursor(headers) {
  const link = headers && (typeof headers.get === "function" ? headers.get("Link") : headers.link);
  const match = link && /<([^>]*)>\s*;\s*rel="?next"?/.exec(link);
  if (!match) return null;
  return new URL(match[1], location.origin).searchParams.get("cursor");
}

/** A hash route with a query: hashWith("#/events", {status: "pending"}). Empty values are left out. */
export function hashWith(path, query) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `${path}?${text}` : path;
}

/** The route's query as a plain object, whether the router put it in params.query or in params. */
export function routeQuery(params) {
  const query = { ...(params && typeof params.query === "object" ? params.query : params) };
  if (query.query && typeof query.query === "object") delete query.query;
  return query;
}

/** "Next page" (and "First page" once paged) links that keep the filters. */
export function pageLinks(path, query, cursor) {
  const links = [];
  if (query.cursor) {
    links.push(el("a", { href: hashWith(path, { ...query, cursor: "" }), class: "button" }, "First page"));
  }
  if (cursor) {
    links.push(el("a", { href: hashWith(path, { ...query, cursor }), class: "button" }, "Next page"));
  }
  return el("nav", { class: "pager", "aria-label": "Pages" }, ...links);
}

/** A button that runs `action` on click (keyboard: Enter/Space, as every button). */
export function button(label, action, attrs = {}) {
  const node = el("button", { type: "button", ...attrs }, label);
  node.addEventListener("click", action);
  return node;
}

/** A text input, select or textarea with a name (showProblem finds fields by it). */
export function input(name, attrs = {}) {
  return el("input", { id: `f-${name}`, name, ...attrs });
}

export function select(name, options, selected, attrs = {}) {
  const node = el("select", { id: `f-${name}`, name, ...attrs });
  for (const [value, label] of options) {
    const option = el("option", { value }, label);
    if (value === (selected ?? "")) option.selected = true;
    node.append(option);
  }
  return node;
}

export const REVIEWERS = ["approver", "admin"];

export function isReviewer(me) {
  return (me?.roles || []).some((role) => REVIEWERS.includes(role));
}

export function isAdmin(me) {
  return (me?.roles || []).includes("admin");
}

// The event workflow as services/resource/types.py declares it: [step, label, from, who, to].
// The API checks every step again (and the four-eyes rule on edits, which only it knows).
export const STEPS = [
  ["submit", "Submit", ["draft"], "owner", "pending"],
  ["approve", "Approve", ["pending"], "reviewer", "approved"],
  ["reject", "Reject", ["pending"], "reviewer", "rejected"],
  ["withdraw", "Withdraw", ["pending"], "owner", "draft"],
  ["reopen", "Reopen", ["rejected"], "owner", "draft"],
  ["cancel", "Cancel", ["approved"], "owner", "cancelled"],
];

/** The steps `me` may take on `event` now: owner steps for its owner or an admin; review
 *  steps for approvers and admins who do not own it. */
export function allowedSteps(event, me) {
  const owner = event.ownerId === me?.id;
  return STEPS.filter(([, , from, who]) => {
    if (!from.includes(event.status)) return false;
    if (who === "owner") return owner || isAdmin(me);
    return isReviewer(me) && !owner;
  });
}

/** Whether `me` may edit `event` (owner or admin; a cancelled event is final). */
export function mayEdit(event, me) {
  return (event.ownerId === me?.id || isAdmin(me)) && event.status !== "cancelled";
}

/** The ETag to send back as If-Match: the response's, else made from the version. */
export function ifMatch(version) {
  return { "If-Match": `"${version}"` };
}

/** A short name for a user id: "you" for the caller. */
export function who(id, me) {
  if (!id) return "Herald";
  return id === me?.id ? "you" : `user ${id.slice(0, 8)}`;
}

/** The explanation of a 412 with the way out: the other person's version. */
export function staleAlert(slot, reload, noun) {
  slot.replaceChildren(
    el(
      "div",
      { class: "problem", role: "alert" },
      el("p", {}, `Someone else changed this ${noun} since you opened it.`),
      button("Reload their version", reload),
    ),
  );
  slot.querySelector("button").focus();
}

/** The API's own words for a refusal (403, 409...) in a page's alert slot. */
export function problemAlert(slot, error) {
  const problem = error.problem || {};
  const words = problem.detail || problem.title || error.message || `HTTP ${error.status}`;
  slot.replaceChildren(el("div", { class: "problem", role: "alert" }, el("p", {}, words)));
}
