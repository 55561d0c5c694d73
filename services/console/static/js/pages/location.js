// #/locations/new and #/locations/<id>: a location's form (Create, or Save with If-Match) and Delete.

import { api } from "../api.js";
import { el, field, time } from "../ui.js";
import { deleteAction, input, isAdmin, resourceForm, who } from "../resources-ui.js";

export async function render(root, params, ctx) {
  if (!params.id) {
    root.append(el("h1", {}, "New location"), locationForm(null, ctx));
    return;
  }
  const { data: loc } = await api("GET", `/v2/location/${encodeURIComponent(params.id)}`);
  if (ctx.stale()) return; // another page was opened meanwhile
  const reload = () => ctx.navigate(window.location.hash);
  const alert = el("div", { class: "alert-slot" });
  root.append(
    el("p", {}, el("a", { href: "#/locations" }, "← Locations")),
    el("h1", {}, loc.name),
    alert,
    el("dl", { class: "facts" }, facts(loc, ctx.me).map(([t, v]) => [el("dt", {}, t), el("dd", {}, v)])),
  );
  if (loc.ownerId !== ctx.me.id && !isAdmin(ctx.me)) return; // only its owner or an admin changes it
  root.append(
    el("h2", {}, "Edit"),
    locationForm(loc, ctx, reload),
    deleteAction("location", loc, loc.name, { slot: alert, reload, ctx }), // a 409 names what uses it
  );
}

function facts(loc, me) {
  return [
    ["Address", loc.address || "not set"],
    ["Capacity", loc.capacity ?? "not set"],
    ["Time zone", loc.timezone],
    ["Owner", who(loc.ownerId, me)],
    ["Version", loc.version],
    ["Changed", time(loc.updatedAt)],
  ];
}

function zoneList() {
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  return el("datalist", { id: "time-zones" }, ["UTC", ...zones].map((zone) => el("option", { value: zone })));
}

function locationForm(loc, ctx, reload) {
  const address = el("textarea", { id: "f-address", name: "address", rows: 2 });
  address.value = loc?.address || "";
  const fields = [
    field("Name", input("name", { value: loc?.name || "", required: true, maxlength: 200 })),
    field("Address", address),
    field("Capacity", input("capacity", { type: "number", min: 0, value: loc?.capacity ?? "" })),
    field("Time zone", input("timezone", { value: loc?.timezone || "UTC", list: "time-zones" }), {
      hint: "An IANA time zone such as Europe/Paris.",
    }),
    zoneList(),
  ];
  return resourceForm("location", loc, fields, locationBody, ctx, reload);
}

function locationBody(data) {
  const text = (name) => String(data.get(name) || "").trim();
  return {
    name: text("name"),
    address: text("address") || null,
    capacity: text("capacity") === "" ? null : Number(text("capacity")),
    timezone: text("timezone") || "UTC",
  };
}
