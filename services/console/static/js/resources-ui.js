// What the event, location and user pages share beyond ui.js: times for datetime-local inputs,
// paging that keeps the cursor in the route (so Back works), the API's refusals in its own
// words, and what the event workflow lets a user do.

import { nextLink } from "./api.js";
import { action, el, pager, problemBlock } from "./ui.js";

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

/** A hash route with a query: hashWith("#/events", {status: "pending"}). Empty values are left out. */
export function hashWith(path, query) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (key !== "id" && value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `${path}?${text}` : path;
}

/** "Next page" (and "First page" once paged) for a list at `path`: the cursor of the API's
 *  Link header goes into the route, with the page's filters. */
export function pages(path, query, headers, ctx) {
  const next = (link) => {
    const cursor = new URL(link, window.location.origin).searchParams.get("cursor");
    ctx.navigate(hashWith(path, { ...query, cursor }));
  };
  const first = query.cursor ? { onFirst: () => ctx.navigate(hashWith(path, { ...query, cursor: "" })) } : {};
  return pager(nextLink(headers), next, first);
}

/** A text input (or another type) named as the API's field, so showProblem finds it. */
export function input(name, attrs = {}) {
  return el("input", { id: `f-${name}`, name, ...attrs });
}

export function select(name, options, selected, attrs = {}) {
  return el(
    "select",
    { id: `f-${name}`, name, ...attrs },
    options.map(([value, label]) => el("option", { value, selected: value === (selected ?? "") }, label)),
  );
}

/** The explanation of a 412 with the way out: the other person's version. */
export function staleAlert(slot, reload, noun) {
  const reloadButton = action("Reload their version", reload);
  slot.replaceChildren(
    el(
      "div",
      { class: "form-alert", role: "alert" },
      el("p", {}, `Someone else changed this ${noun} since you opened it.`),
      el("p", {}, "Reload to see their version; your changes here are not saved."),
      reloadButton,
    ),
  );
  reloadButton.focus();
}

/** A refusal (403, 409, 412...) in a page's alert slot, in the API's own words. `noun`: what a
 *  412 is about, explained with a button to reload it. */
export function refusal(slot, error, reload, noun) {
  if (!error || !error.status) throw error; // not the API's answer: the page's error view shows it
  if (error.status === 412) staleAlert(slot, reload, noun);
  else slot.replaceChildren(problemBlock(error));
}

const REVIEWERS = ["approver", "admin"];

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

export function ifMatch(version) {
  return { "If-Match": `"${version}"` };
}

/** A short name for a user id: "you" for the caller. */
export function who(id, me) {
  if (!id) return "Herald";
  return id === me?.id ? "you" : `user ${id.slice(0, 8)}`;
}

const BADGES = { pending: "wait", approved: "ok", rejected: "bad", cancelled: "off" };

/** An event's status: a word and a shape, never colour alone. */
export function statusBadge(status) {
  return el("span", { class: `status ${BADGES[status] || ""}` }, status);
}
