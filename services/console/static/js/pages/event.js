// #/events/new and #/events/<id>: one event, its workflow buttons, its form and its history.
// Every change sends If-Match with the version this page read: a 412 means someone else changed
// the event since, and the page offers their version instead of overwriting it.

import { api } from "../api.js";
import { el, field, notice, confirm, showProblem, time } from "../ui.js";
import {
  allowedSteps,
  button,
  ifMatch,
  input,
  isoToLocal,
  localToRfc3339,
  mayEdit,
  problemAlert,
  select,
  staleAlert,
  STEPS,
  who,
} from "../resources-ui.js";
import { locationNames, statusBadge } from "./events.js";

export async function render(root, params, ctx) {
  const id = params.id && params.id !== "new" ? params.id : null;
  const locations = await locationNames();
  if (!id) {
    root.replaceChildren(el("h1", {}, "New event"), eventForm(null, locations, ctx));
    return;
  }
  const { data: event } = await api("GET", `/v2/event/${id}`);
  const names = new Map(locations);
  const alert = el("div", { class: "alert-slot" });
  const reload = () => render(root, params, ctx);

  root.replaceChildren(
    el("p", {}, el("a", { href: "#/events" }, "← Events")),
    el("h1", {}, event.title),
    alert,
    details(event, names, ctx.me),
    workflow(event, ctx, alert, reload),
  );
  if (mayEdit(event, ctx.me)) {
    root.append(
      el("h2", {}, "Edit"),
      eventForm(event, locations, ctx, reload),
      deleteSection(event, ctx, alert, reload),
    );
  }
  root.append(await historySection(event, ctx.me));
}

function details(event, names, me) {
  const rows = [
    ["Status", statusBadge(event.status)],
    ["Starts", time(event.startsAt)],
    ["Ends", time(event.endsAt)],
    ["Location", event.locationId ? names.get(event.locationId) || event.locationId : "none"],
    ["Capacity", event.capacity == null ? "not set" : String(event.capacity)],
    ["Tags", (event.tags || []).join(", ") || "none"],
    ["Description", event.description || ""],
    ["Owner", who(event.ownerId, me)],
    ["Version", String(event.version)],
    ["Changed", time(event.updatedAt)],
  ];
  return el(
    "dl",
    { class: "details" },
    ...rows.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]),
  );
}

/** POST a workflow step with If-Match; the 412, 403 and 409 are shown as explained above. */
export async function takeStep(event, step, comment, slot, onDone) {
  const options = { headers: ifMatch(event.version) };
  if (comment) options.body = { comment };
  try {
    const { data } = await api("POST", `/v2/event/${event.id}/${step}`, options);
    return data;
  } catch (error) {
    if (error.status === 412) staleAlert(slot, onDone, "event");
    else if (error.status) problemAlert(slot, error);
    else throw error;
    return null;
  }
}

function workflow(event, ctx, alert, reload) {
  const steps = allowedSteps(event, ctx.me);
  const section = el("section", { class: "workflow", "aria-labelledby": "workflow-head" });
  section.append(el("h2", { id: "workflow-head" }, "Workflow"));
  if (!steps.length) {
    section.append(el("p", {}, `Nothing to do for you on a ${event.status} event.`));
    return section;
  }
  const comment = el("textarea", { id: "f-comment", name: "comment", rows: "2", maxlength: "2000" });
  section.append(field("Comment (optional)", comment));
  const buttons = el("div", { class: "actions" });
  for (const [step, label] of steps) {
    buttons.append(
      button(label, async () => {
        const done = await takeStep(event, step, comment.value.trim(), alert, reload);
        if (done) {
          notice(`${label}: the event is now ${done.status}.`);
          await reload();
        }
      }),
    );
  }
  section.append(buttons);
  return section;
}

function deleteSection(event, ctx, alert, reload) {
  return el(
    "div",
    { class: "actions danger" },
    button(
      "Delete",
      async () => {
        if (!(await confirm(`Delete the event “${event.title}”? This cannot be undone.`))) return;
        try {
          await api("DELETE", `/v2/event/${event.id}`, { headers: ifMatch(event.version) });
        } catch (error) {
          if (error.status === 412) staleAlert(alert, reload, "event");
          else if (error.status) problemAlert(alert, error);
          else throw error;
          return;
        }
        notice("Event deleted.");
        ctx.navigate("#/events");
      },
      { class: "danger" },
    ),
  );
}

/** The form of a new event (Create) or of `event` (Save, a PUT with If-Match). */
function eventForm(event, locations, ctx, reload) {
  const form = el("form", { class: "edit", novalidate: "" });
  const description = el("textarea", { id: "f-description", name: "description", rows: "4" });
  description.value = event?.description || "";
  form.append(
    el("div", { class: "alert-slot" }),
    field("Title", input("title", { value: event?.title || "", required: "", maxlength: "200" })),
    field("Description", description),
    field("Starts", input("startsAt", { type: "datetime-local", value: isoToLocal(event?.startsAt), required: "" }), {
      hint: `Your time zone: ${Intl.DateTimeFormat().resolvedOptions().timeZone}`,
    }),
    field("Ends", input("endsAt", { type: "datetime-local", value: isoToLocal(event?.endsAt), required: "" })),
    field("Location", select("locationId", [["", "None"], ...locations], event?.locationId || "")),
    field("Capacity", input("capacity", { type: "number", min: "0", value: event?.capacity ?? "" })),
    field("Tags", input("tags", { value: (event?.tags || []).join(", ") }), { hint: "Comma-separated" }),
    el("button", { type: "submit", class: "primary" }, event ? "Save" : "Create"),
  );
  if (event?.status === "approved") {
    form.append(el("p", { class: "hint" }, "Saving changes sends an approved event back for approval."));
  }
  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    const body = formBody(new FormData(form));
    const slot = form.querySelector(".alert-slot");
    slot.replaceChildren();
    try {
      if (!event) {
        const { data } = await api("POST", "/v2/event/list", { body });
        notice("Event created as a draft.");
        ctx.navigate(`#/events/${data.id}`);
      } else {
        await api("PUT", `/v2/event/${event.id}`, { body, headers: ifMatch(event.version) });
        notice("Event saved.");
        await reload();
      }
    } catch (error) {
      if (error.status === 412) staleAlert(slot, reload, "event");
      else if (error.status) showProblem(form, error);
      else throw error;
    }
  });
  return form;
}

function formBody(data) {
  const text = (name) => String(data.get(name) || "").trim();
  const capacity = text("capacity");
  return {
    title: text("title"),
    description: text("description") || null,
    startsAt: localToRfc3339(text("startsAt")),
    endsAt: localToRfc3339(text("endsAt")),
    locationId: text("locationId") || null,
    capacity: capacity === "" ? null : Number(capacity),
    tags: [
      ...new Set(
        text("tags")
          .split(",")
          .map((tag) => tag.trim())
          .filter(Boolean),
      ),
    ],
  };
}

/** What a history row records: a step (its button's label) or an edit. */
function describe(entry) {
  const step = STEPS.find(([, , from, , to]) => from.includes(entry.from) && to === entry.to);
  return step ? step[1] : "Edited";
}

async function historySection(event, me) {
  const section = el("section", { class: "history", "aria-labelledby": "history-head" });
  section.append(el("h2", { id: "history-head" }, "History"));
  const { data: entries } = await api("GET", `/v2/event/${event.id}/history`);
  if (!entries.length) {
    section.append(el("p", { class: "empty" }, "No changes since it was created."));
    return section;
  }
  const head = ["When", "What", "From", "To", "By", "Comment"];
  const rows = entries
    .slice()
    .reverse()
    .map((entry) => {
      const cells = [
        time(entry.at),
        describe(entry),
        entry.from || "",
        entry.to,
        who(entry.actorId, me),
        entry.comment && entry.comment !== "edited" ? entry.comment : "",
      ];
      return el("tr", {}, ...cells.map((cell, i) => el("td", { "data-label": head[i] }, cell)));
    });
  section.append(
    el(
      "div",
      { class: "table-wrap" },
      el(
        "table",
        { class: "list" },
        el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, ...rows),
      ),
    ),
  );
  return section;
}
