// #/locations: every location, with text search, sort and paging.

import { api } from "../api.js";
import { el, field, showProblem } from "../ui.js";
import { hashWith, input, nextCursor, pageLinks, routeQuery, select } from "../resources-ui.js";

const SORTS = [
  ["name", "Name, A to Z"],
  ["-name", "Name, Z to A"],
  ["-createdAt", "Newest first"],
  ["-updatedAt", "Recently changed"],
];

export async function render(root, params, ctx) {
  const query = routeQuery(params);
  const form = el("form", { class: "filters", "aria-label": "Filter locations" });
  form.append(
    field("Search", input("q", { type: "search", value: query.q || "" })),
    field("Minimum capacity", input("capacity", { type: "number", min: "0", value: query.capacity || "" })),
    field("Sort", select("sort", SORTS, query.sort || "name")),
    el("button", { type: "submit" }, "Filter"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    ctx.navigate(
      hashWith("#/locations", { q: data.get("q"), capacity: data.get("capacity"), sort: data.get("sort") }),
    );
  });
  root.replaceChildren(
    el(
      "div",
      { class: "page-head" },
      el("h1", {}, "Locations"),
      el("a", { href: "#/locations/new", class: "button primary" }, "New location"),
    ),
    form,
  );
  const apiQuery = { sort: query.sort || "name", limit: "25" };
  if (query.q) apiQuery.q = query.q;
  if (query.capacity) apiQuery["capacity[gte]"] = query.capacity;
  if (query.cursor) apiQuery.cursor = query.cursor;
  let response;
  try {
    response = await api("GET", "/v2/location/list", { query: apiQuery });
  } catch (error) {
    showProblem(form, error);
    return;
  }
  if (!response.data.length) {
    root.append(el("p", { class: "empty" }, "No locations match."));
  } else {
    const head = ["Name", "Address", "Capacity", "Time zone"];
    const rows = response.data.map((loc) =>
      el(
        "tr",
        {},
        ...[
          el("a", { href: `#/locations/${loc.id}` }, loc.name),
          loc.address || "",
          loc.capacity == null ? "" : String(loc.capacity),
          loc.timezone,
        ].map((cell, i) => el("td", { "data-label": head[i] }, cell)),
      ),
    );
    root.append(
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
  }
  root.append(pageLinks("#/locations", query, nextCursor(response.headers)));
}
