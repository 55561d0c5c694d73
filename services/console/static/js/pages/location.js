// #/locations/new and #/locations/<id>: a location's form (Create, or Save with If-Match) and Delete.

import { api } from "../api.js";
import { action, confirm, el, field, notice, showProblem, time } from "../ui.js";
import { ifMatch, input, isAdmin, refusal, who } from "../resources-ui.js";

export async function render(root, params, ctx) {
  if (!params.id) {
    root.append(el("h1", {}, "New location"), locationForm(null, ctx));
    return;
  }
  const { data: loc } = await api("GET", `/v2/location/${encodeURIComponent(params.id)}`);
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
    el(
      "div",
      { class: "actions" },
      action(
        "Delete",
        async () => {
          const sure = await confirm(`Delete the location “${loc.name}”? This cannot be undone.`, {
            yes: "Delete",
            danger: true,
          });
          if (!sure) return;
          try {
            await api("DELETE", `/v2/location/${loc.id}`, { headers: ifMatch(loc.version) });
          } catch (error) {
            refusal(alert, error, reload, "location"); // a 409 says which event still uses it
            return;
          }
          notice("Location deleted.");
          ctx.navigate("#/locations");
        },
        { class: "danger" },
      ),
    ),
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
  const slot = el("div", { class: "alert-slot" });
  const form = el(
    "form",
    { class: "card", novalidate: true, "aria-label": loc ? "Edit location" : "New location" },
    slot,
    field("Name", input("name", { value: loc?.name || "", required: true, maxlength: 200 })),
    field("Address", address),
    field("Capacity", input("capacity", { type: "number", min: 0, value: loc?.capacity ?? "" })),
    field("Time zone", input("timezone", { value: loc?.timezone || "UTC", list: "time-zones" }), {
      hint: "An IANA time zone such as Europe/Paris.",
    }),
    zoneList(),
    el("div", { class: "actions" }, el("button", { type: "submit" }, loc ? "Save" : "Create")),
  );
  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    const data = new FormData(form);
    const text = (name) => String(data.get(name) || "").trim();
    const body = {
      name: text("name"),
      address: text("address") || null,
      capacity: text("capacity") === "" ? null : Number(text("capacity")),
      timezone: text("timezone") || "UTC",
    };
    slot.replaceChildren();
    try {
      if (!loc) {
        const { data: created } = await api("POST", "/v2/location/list", { body });
        notice("Location created.");
        ctx.navigate(`#/locations/${created.id}`);
      } else {
        await api("PUT", `/v2/location/${loc.id}`, { body, headers: ifMatch(loc.version) });
        notice("Location saved.");
        reload();
      }
    } catch (error) {
      if (error.status === 412 || !error.status) refusal(slot, error, reload, "location");
      else showProblem(form, error);
    }
  });
  return form;
}
