// #/events/new and #/events/<id>: one event, its workflow buttons, its form and its history.
// Every change sends If-Match with the version this page read: a 412 means someone else changed
// the event since, and the page offers their version instead of overwriting it.

import { api } from "../api.js";
import { action, confirm, el, field, notice, table, time } from "../ui.js";
import {
  actorNames,
  allowedSteps,
  deleteAction,
  ifMatch,
  input,
  isoToLocal,
  localToRfc3339,
  mayEdit,
  refusal,
  resourceForm,
  select,
  statusBadge,
  STEPS,
  who,
} from "../resources-ui.js";
import { locationNames } from "./events.js";

export async function render(root, params, ctx) {
  const locations = await locationNames();
  if (ctx.stale()) return; // another page was opened meanwhile
  if (!params.id) {
    root.append(el("h1", {}, "New event"), eventForm(null, locations, ctx));
    return;
  }
  const { data: event } = await api("GET", `/v2/event/${encodeURIComponent(params.id)}`);
  const { data: history } = await api("GET", `/v2/event/${encodeURIComponent(params.id)}/history`);
  const people = await actorNames(ctx.me);
  if (ctx.stale()) return;
  const alert = el("div", { class: "alert-slot" });
  const reload = () => ctx.navigate(window.location.hash);

  root.append(
    el("p", {}, el("a", { href: "#/events" }, "← Events")),
    el("h1", {}, event.title),
    alert,
    details(event, new Map(locations), ctx.me, people),
    workflow(event, ctx, alert, reload),
  );
  if (mayEdit(event, ctx.me)) {
    root.append(
      el("h2", {}, "Edit"),
      eventForm(event, locations, ctx, reload),
      deleteAction("event", event, event.title, { slot: alert, reload, ctx }),
    );
  }
  root.append(historySection(history, ctx.me, people));
}

function details(event, names, me, people) {
  const rows = [
    ["Status", statusBadge(event.status)],
    ["Starts", time(event.startsAt)],
    ["Ends", time(event.endsAt)],
    ["Location", event.locationId ? names.get(event.locationId) || event.locationId : "none"],
    ["Capacity", event.capacity ?? "not set"],
    ["Tags", (event.tags || []).join(", ") || "none"],
    ["Description", event.description || ""],
    ["Owner", who(event.ownerId, me, people)],
    ["Version", event.version],
    ["Changed", time(event.updatedAt)],
  ];
  return el(
    "dl",
    { class: "facts" },
    rows.map(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]),
  );
}

/** POST a workflow step with the version read (If-Match); the API's refusal lands in `slot`.
 *  The event after the step, or null when refused. */
export async function takeStep(event, step, comment, slot, reload) {
  const options = { headers: ifMatch(event.version) };
  if (comment) options.body = { comment };
  try {
    const { data } = await api("POST", `/v2/event/${event.id}/${step}`, options);
    return data;
  } catch (error) {
    refusal(slot, error, reload, "event");
    return null;
  }
}

function workflow(event, ctx, alert, reload) {
  const steps = allowedSteps(event, ctx.me);
  const section = el("section", { "aria-labelledby": "workflow-head" }, el("h2", { id: "workflow-head" }, "Workflow"));
  if (!steps.length) {
    section.append(el("p", { class: "muted" }, `Nothing for you to do on ${event.status === "approved" ? "an" : "a"} ${event.status} event.`));
    return section;
  }
  const comment = el("textarea", { id: "f-comment", name: "comment", rows: 2, maxlength: 2000 });
  section.append(
    field("Comment", comment, { hint: "Optional; kept in the history with the step." }),
    el(
      "div",
      { class: "actions" },
      steps.map(([step, label]) =>
        action(label, async () => {
          if (step === "cancel") {
            const sure = await confirm(`Cancel “${event.title}”? A cancelled event cannot be changed any more.`, {
              yes: "Cancel the event",
              no: "Keep it",
              danger: true,
            });
            if (!sure) return;
          }
          const done = await takeStep(event, step, comment.value.trim(), alert, reload);
          if (!done) return;
          notice(`${label}: the event is now ${done.status}.`);
          reload();
        }),
      ),
    ),
  );
  return section;
}

/** The form of a new event (Create) or of `event` (Save: a PUT with If-Match). */
function eventForm(event, locations, ctx, reload) {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const description = el("textarea", { id: "f-description", name: "description", rows: 4 });
  description.value = event?.description || "";
  const fields = [
    field("Title", input("title", { value: event?.title || "", required: true, maxlength: 200 })),
    field("Description", description),
    field("Starts", input("startsAt", { type: "datetime-local", value: isoToLocal(event?.startsAt), required: true }), {
      hint: `In your time zone (${zone}).`,
    }),
    field("Ends", input("endsAt", { type: "datetime-local", value: isoToLocal(event?.endsAt), required: true })),
    field("Location", select("locationId", [["", "None"], ...locations], event?.locationId || "")),
    field("Capacity", input("capacity", { type: "number", min: 0, value: event?.capacity ?? "" })),
    field("Tags", input("tags", { value: (event?.tags || []).join(", ") }), { hint: "Comma-separated." }),
    event?.status === "approved" ? el("p", { class: "hint" }, "Saving sends an approved event back for approval.") : null,
  ];
  return resourceForm("event", event, fields, formBody, ctx, reload);
}

function formBody(data) {
  const text = (name) => String(data.get(name) || "").trim();
  const capacity = text("capacity");
  const tags = text("tags")
    .split(",")
    .map((tag) => tag.trim())
    .filter(Boolean);
  return {
    title: text("title"),
    description: text("description") || null,
    startsAt: localToRfc3339(text("startsAt")),
    endsAt: localToRfc3339(text("endsAt")),
    locationId: text("locationId") || null,
    capacity: capacity === "" ? null : Number(capacity),
    tags: [...new Set(tags)],
  };
}

/** What a history row records: a step (its button's label) or an edit. */
function describe(entry) {
  const step = STEPS.find(([, , from, , to]) => from.includes(entry.from) && to === entry.to);
  return step ? step[1] : "Edited";
}

function historySection(entries, me, people) {
  return el(
    "section",
    { "aria-labelledby": "history-head", class: "history" },
    el("h2", { id: "history-head" }, "History"),
    table(
      [
        { label: "When", cell: (e) => time(e.at) },
        { label: "What", cell: describe },
        { label: "Status", cell: (e) => `${e.from || "—"} → ${e.to}` },
        { label: "By", cell: (e) => who(e.actorId, me, people) },
        { label: "Comment", cell: (e) => (e.comment && e.comment !== "edited" ? e.comment : "") },
      ],
      entries.slice().reverse(),
      { caption: "History, newest first", empty: "No changes since it was created." },
    ),
  );
}
