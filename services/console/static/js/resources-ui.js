// What the event, location and user pages share beyond ui.js: times for datetime-local inputs,
// paging that keeps the cursor in the route (so Back works), the API's refusals in its own
// words, and what the event workflow lets a user do.

import { api, nextLink } from "./api.js";
import { action, confirm, el, notice, pager, problemBlock, showProblem } from "./ui.js";

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

/** A user's name for the page: "you" for the caller, their email when `people` (admins only:
 *  only they may list users) knows it, else the start of their id. */
export function who(id, me, people = new Map()) {
  if (!id) return "Herald";
  if (id === me?.id) return "you";
  return people.get(id) || `user ${id.slice(0, 8)}`;
}

/** Emails by user id, for an admin (GET /v2/user/list is theirs alone); empty for others. */
export async function actorNames(me) {
  if (!isAdmin(me)) return new Map();
  const { data } = await api("GET", "/v2/user/list", { query: { limit: "500" } });
  return new Map(data.map((user) => [user.id, user.email]));
}

const BADGES = { pending: "wait", approved: "ok", rejected: "bad", cancelled: "off" };

/** An event's status: a word and a shape, never colour alone. */
export function statusBadge(status) {
  return el("span", { class: `status ${BADGES[status] || ""}` }, status);
}

/** The form of a new event or location (Create: POST to /v2/<type>/list, then its page) or of
 *  `current` (Save: PUT with If-Match of the version read, then the page again). `bodyOf`
 *  turns the form's data into the request body. A 412 is explained with the way to their
 *  version; a 422 lands on the fields it names. */
export function resourceForm(type, current, fields, bodyOf, ctx, reload) {
  const noun = type.charAt(0).toUpperCase() + type.slice(1);
  const slot = el("div", { class: "alert-slot" });
  const form = el(
    "form",
    { class: "card", novalidate: true, "aria-label": current ? `Edit ${type}` : `New ${type}` },
    slot,
    fields,
    el("div", { class: "actions" }, el("button", { type: "submit" }, current ? "Save" : "Create")),
  );
  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    const body = bodyOf(new FormData(form));
    slot.replaceChildren();
    try {
      if (!current) {
        const { data } = await api("POST", `/v2/${type}/list`, { body });
        notice(`${noun} created.`);
        ctx.navigate(`#/${type}s/${data.id}`);
      } else {
        await api("PUT", `/v2/${type}/${current.id}`, { body, headers: ifMatch(current.version) });
        notice(`${noun} saved.`);
        reload();
      }
    } catch (error) {
      if (error.status === 412 || !error.status) refusal(slot, error, reload, type);
      else showProblem(form, error);
    }
  });
  return form;
}

/** "Delete" on a resource's page: asks first, sends If-Match, then goes back to the list. A
 *  refusal (a 409 naming what still refers to it, a 412) shows in `slot`. */
export function deleteAction(type, current, title, { slot, reload, ctx }) {
  const remove = async () => {
    const sure = await confirm(`Delete the ${type} “${title}”? This cannot be undone.`, { yes: "Delete", danger: true });
    if (!sure) return;
    try {
      await api("DELETE", `/v2/${type}/${current.id}`, { headers: ifMatch(current.version) });
    } catch (error) {
      refusal(slot, error, reload, type);
      return;
    }
    notice(`Deleted “${title}”.`);
    ctx.navigate(`#/${type}s`);
  };
  return el("div", { class: "actions" }, action("Delete", remove, { class: "danger" }));
}
