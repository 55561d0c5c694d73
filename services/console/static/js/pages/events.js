// #/events: the events the user may see, with the API's filters, sort and paging.

import { api } from "../api.js";
import { el, field, showProblem, time } from "../ui.js";
import {
  hashWith,
  input,
  localToRfc3339,
  nextCursor,
  pageLinks,
  routeQuery,
  select,
} from "../resources-ui.js";

export const STATUSES = ["draft", "pending", "approved", "rejected", "cancelled"];
const SORTS = [
  ["startsAt", "Start, earliest first"],
  ["-startsAt", "Start, latest first"],
  ["title", "Title, A to Z"],
  ["-createdAt", "Newest first"],
  ["-updatedAt", "Recently changed"],
];
// The filters of this page, each a query parameter of GET /v2/event/list.
const FILTERS = ["q", "status", "locationId", "from", "to", "tags", "mine", "sort"];

/** Every location as [id, name], for selects and for naming an event's location. */
export async function locationNames() {
  const { data } = await api("GET", "/v2/location/list", {
    query: { fields: "id,name", sort: "name", limit: "500" },
  });
  return data.map((loc) => [loc.id, loc.name]);
}

export function statusBadge(status) {
  return el("span", { class: `status status-${status}` }, status);
}

export async function render(root, params, ctx) {
  const query = routeQuery(params);
  const locations = await locationNames();
  const names = new Map(locations);

  const form = el("form", { class: "filters", "aria-label": "Filter events" });
  form.append(
    field("Search", input("q", { type: "search", value: query.q || "" })),
    field("Status", select("status", [["", "Any"], ...STATUSES.map((s) => [s, s])], query.status)),
    field("Location", select("locationId", [["", "Any"], ...locations], query.locationId)),
    field("Starts from", input("from", { type: "datetime-local", value: query.from || "" })),
    field("Starts before", input("to", { type: "datetime-local", value: query.to || "" })),
    field("Tag", input("tags", { value: query.tags || "" })),
    field("Sort", select("sort", SORTS, query.sort || "startsAt")),
  );
  const mine = input("mine", { type: "checkbox", value: "1" });
  mine.checked = query.mine === "1";
  form.append(field("Mine only", mine));
  form.append(el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = {};
    for (const name of FILTERS) next[name] = data.get(name) || "";
    ctx.navigate(hashWith("#/events", next));
  });

  root.replaceChildren(
    el(
      "div",
      { class: "page-head" },
      el("h1", {}, "Events"),
      el("a", { href: "#/events/new", class: "button primary" }, "New event"),
    ),
    form,
  );

  const apiQuery = { sort: query.sort || "startsAt", limit: "25" };
  if (query.q) apiQuery.q = query.q;
  if (query.status) apiQuery.status = query.status;
  if (query.locationId) apiQuery.locationId = query.locationId;
  if (query.from) apiQuery["startsAt[gte]"] = localToRfc3339(query.from);
  if (query.to) apiQuery["startsAt[lt]"] = localToRfc3339(query.to);
  if (query.tags) apiQuery.tags = query.tags.trim();
  if (query.mine === "1") apiQuery.ownerId = ctx.me.id;
  if (query.cursor) apiQuery.cursor = query.cursor;

  let response;
  try {
    response = await api("GET", "/v2/event/list", { query: apiQuery });
  } catch (error) {
    showProblem(form, error);
    return;
  }
  const events = response.data;
  if (!events.length) {
    root.append(el("p", { class: "empty" }, "No events match."));
  } else {
    root.append(eventTable(events, names));
  }
  root.append(pageLinks("#/events", query, nextCursor(response.headers)));
}

/** A table of events, each title a link to the event. */
export function eventTable(events, names, extra) {
  const head = ["Title", "Status", "Starts", "Ends", "Location", "Capacity", "Tags"];
  if (extra) head.push(extra.label);
  const rows = events.map((event) => {
    const cells = [
      el("a", { href: `#/events/${event.id}` }, event.title),
      statusBadge(event.status),
      time(event.startsAt),
      time(event.endsAt),
      event.locationId ? names.get(event.locationId) || "(unknown)" : "",
      event.capacity ?? "",
      (event.tags || []).join(", "),
    ];
    if (extra) cells.push(extra.cell(event));
    const labels = head;
    return el(
      "tr",
      { "data-id": event.id },
      ...cells.map((cell, i) => el("td", { "data-label": labels[i] }, cell)),
    );
  });
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      { class: "list" },
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...rows),
    ),
  );
}
