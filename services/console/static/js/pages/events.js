// #/events: the events the user may see, with the API's filters, sort and paging.

import { api } from "../api.js";
import { el, field, showProblem, table, time } from "../ui.js";
import { hashWith, input, localToRfc3339, pages, select, statusBadge } from "../resources-ui.js";

const STATUSES = ["draft", "pending", "approved", "rejected", "cancelled"];
const SORTS = [
  ["startsAt", "Start, earliest first"],
  ["-startsAt", "Start, latest first"],
  ["title", "Title, A to Z"],
  ["-createdAt", "Newest first"],
  ["-updatedAt", "Recently changed"],
];
// This page's filters (in the route) and the parameters of GET /v2/event/list they become.
const FILTERS = ["q", "status", "locationId", "from", "to", "tags", "mine", "sort", "limit"];

/** Every location as [id, name], for selects and for naming an event's location. */
export async function locationNames() {
  const { data } = await api("GET", "/v2/location/list", {
    query: { fields: "id,name", sort: "name", limit: "500" },
  });
  return data.map((loc) => [loc.id, loc.name]);
}

function apiQuery(query, me) {
  return {
    sort: query.sort || "startsAt",
    limit: query.limit || "25", // a route's ?limit= sets the page size
    q: query.q,
    status: query.status,
    locationId: query.locationId,
    "startsAt[gte]": localToRfc3339(query.from),
    "startsAt[lt]": localToRfc3339(query.to),
    tags: query.tags && query.tags.trim(),
    ownerId: query.mine === "1" ? me.id : undefined,
    cursor: query.cursor,
  };
}

function filterForm(query, locations, ctx) {
  const mine = input("mine", { type: "checkbox", value: "1", checked: query.mine === "1" });
  const form = el(
    "form",
    { class: "inline card", "aria-label": "Filter events" },
    field("Search", input("q", { type: "search", value: query.q || "" })),
    field("Status", select("status", [["", "Any"], ...STATUSES.map((s) => [s, s])], query.status)),
    field("Location", select("locationId", [["", "Any"], ...locations], query.locationId)),
    field("Starts from", input("from", { type: "datetime-local", value: query.from || "" })),
    field("Starts before", input("to", { type: "datetime-local", value: query.to || "" })),
    field("Tag", input("tags", { value: query.tags || "" })),
    field("Sort", select("sort", SORTS, query.sort || "startsAt")),
    field("Mine only", mine),
    query.limit ? el("input", { type: "hidden", name: "limit", value: query.limit }) : null,
    el("button", { type: "submit" }, "Filter"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    ctx.navigate(hashWith("#/events", Object.fromEntries(FILTERS.map((name) => [name, data.get(name) || ""]))));
  });
  return form;
}

export async function render(root, params, ctx) {
  const locations = await locationNames();
  if (ctx.stale()) return; // another page was opened meanwhile
  const form = filterForm(params, locations, ctx);
  root.append(
    el("h1", {}, "Events"),
    el("div", { class: "actions" }, el("a", { href: "#/events/new", class: "button" }, "New event")),
    form,
  );
  let response;
  try {
    response = await api("GET", "/v2/event/list", { query: apiQuery(params, ctx.me) });
  } catch (error) {
    if (!error.status) throw error;
    showProblem(form, error); // a 400 names the filter in its detail
    return;
  }
  if (ctx.stale()) return;
  root.append(
    eventTable(response.data, new Map(locations), { caption: "Events", empty: "No events match." }),
    pages("#/events", params, response.headers, ctx),
  );
}

/** A table of events, each title a link to the event; `extra`: one more column. */
export function eventTable(events, names, options, extra = []) {
  const columns = [
    { label: "Title", cell: (e) => el("a", { href: `#/events/${encodeURIComponent(e.id)}` }, e.title) },
    { label: "Status", cell: (e) => statusBadge(e.status) },
    { label: "Starts", cell: (e) => time(e.startsAt) },
    { label: "Ends", cell: (e) => time(e.endsAt) },
    { label: "Location", cell: (e) => (e.locationId ? names.get(e.locationId) || "(unknown)" : "") },
    { label: "Capacity", cell: (e) => e.capacity ?? "", class: "num" },
    { label: "Tags", cell: (e) => (e.tags || []).join(", ") },
    ...extra,
  ];
  return table(columns, events, options);
}
