// #/locations: every location, with text search, a capacity floor, sort and paging.

import { api } from "../api.js";
import { el, field, showProblem, table } from "../ui.js";
import { hashWith, input, pages, select } from "../resources-ui.js";

const SORTS = [
  ["name", "Name, A to Z"],
  ["-name", "Name, Z to A"],
  ["-createdAt", "Newest first"],
  ["-updatedAt", "Recently changed"],
];

export async function render(root, params, ctx) {
  const form = el(
    "form",
    { class: "inline card", "aria-label": "Filter locations" },
    field("Search", input("q", { type: "search", value: params.q || "" })),
    field("Capacity at least", input("capacity", { type: "number", min: 0, value: params.capacity || "" })),
    field("Sort", select("sort", SORTS, params.sort || "name")),
    el("button", { type: "submit" }, "Filter"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    ctx.navigate(hashWith("#/locations", { q: data.get("q"), capacity: data.get("capacity"), sort: data.get("sort") }));
  });
  root.append(
    el("h1", {}, "Locations"),
    el("div", { class: "actions" }, el("a", { href: "#/locations/new", class: "button" }, "New location")),
    form,
  );
  const query = {
    sort: params.sort || "name",
    limit: "25",
    q: params.q,
    "capacity[gte]": params.capacity,
    cursor: params.cursor,
  };
  let response;
  try {
    response = await api("GET", "/v2/location/list", { query });
  } catch (error) {
    if (!error.status) throw error;
    showProblem(form, error);
    return;
  }
  if (ctx.stale()) return; // another page was opened meanwhile
  root.append(
    table(
      [
        { label: "Name", cell: (l) => el("a", { href: `#/locations/${encodeURIComponent(l.id)}` }, l.name) },
        { label: "Address", cell: (l) => l.address || "" },
        { label: "Capacity", cell: (l) => l.capacity ?? "", class: "num" },
        { label: "Time zone", cell: (l) => l.timezone },
      ],
      response.data,
      { caption: "Locations", empty: "No locations match." },
    ),
    pages("#/locations", params, response.headers, ctx),
  );
}
