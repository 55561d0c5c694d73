// #/locations/new and #/locations/<id>: a location's form (Create, or Save with If-Match) and Delete.

import { api } from "../api.js";
import { confirm, el, field, notice, showProblem, time } from "../ui.js";
import { button, ifMatch, input, isAdmin, problemAlert, staleAlert, who } from "../resources-ui.js";

export async function render(root, params, ctx) {
  const id = params.id && params.id !== "new" ? params.id : null;
  if (!id) {
    root.replaceChildren(el("h1", {}, "New location"), locationForm(null, ctx));
    return;
  }
  const { data: loc } = await api("GET", `/v2/location/${id}`);
  const reload = () => render(root, params, ctx);
  const mine = loc.ownerId === ctx.me.id || isAdmin(ctx.me);
  const alert = el("div", { class: "alert-slot" });
  root.replaceChildren(
    el("p", {}, el("a", { href: "#/locations" }, "← Locations")),
    el("h1", {}, loc.name),
    alert,
    el(
      "p",
      { class: "meta" },
      `Owner: ${who(loc.ownerId, ctx.me)} · version ${loc.version} · changed `,
      time(loc.updatedAt),
    ),
  );
  if (!mine) {
    root.append(locationDetails(loc));
    return;
  }
  root.append(
    locationForm(loc, ctx, reload),
    el(
      "div",
      { class: "actions danger" },
      button(
        "Delete",
        async () => {
          if (!(await confirm(`Delete the location “${loc.name}”? This cannot be undone.`))) return;
          try {
            await api("DELETE", `/v2/location/${loc.id}`, { headers: ifMatch(loc.version) });
          } catch (error) {
            if (error.status === 412) staleAlert(alert, reload, "location");
            else if (error.status) problemAlert(alert, error);
            else throw error;
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

function locationDetails(loc) {
  const rows = [
    ["Address", loc.address || ""],
    ["Capacity", loc.capacity == null ? "not set" : String(loc.capacity)],
    ["Time zone", loc.timezone],
  ];
  return el("dl", { class: "details" }, ...rows.flatMap(([t, v]) => [el("dt", {}, t), el("dd", {}, v)]));
}

function zoneList() {
  const list = el("datalist", { id: "time-zones" });
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  for (const zone of ["UTC", ...zones]) list.append(el("option", { value: zone }));
  return list;
}

function locationForm(loc, ctx, reload) {
  const form = el("form", { class: "edit", novalidate: "" });
  const address = el("textarea", { id: "f-address", name: "address", rows: "2" });
  address.value = loc?.address || "";
  form.append(
    el("div", { class: "alert-slot" }),
    field("Name", input("name", { value: loc?.name || "", required: "", maxlength: "200" })),
    field("Address", address),
    field("Capacity", input("capacity", { type: "number", min: "0", value: loc?.capacity ?? "" })),
    field("Time zone", input("timezone", { value: loc?.timezone || "UTC", list: "time-zones" }), {
      hint: "An IANA time zone such as Europe/Paris",
    }),
    zoneList(),
    el("button", { type: "submit", class: "primary" }, loc ? "Save" : "Create"),
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
    const slot = form.querySelector(".alert-slot");
    slot.replaceChildren();
    try {
      if (!loc) {
        const { data: created } = await api("POST", "/v2/location/list", { body });
        notice("Location created.");
        ctx.navigate(`#/locations/${created.id}`);
      } else {
        await api("PUT", `/v2/location/${loc.id}`, { body, headers: ifMatch(loc.version) });
        notice("Location saved.");
        await reload();
      }
    } catch (error) {
      if (error.status === 412) staleAlert(slot, reload, "location");
      else if (error.status) showProblem(form, error);
      else throw error;
    }
  });
  return form;
}
