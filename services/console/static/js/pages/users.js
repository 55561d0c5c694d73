// #/users (admins): every user; create with roles; change roles; disable or enable; delete.
// The API enforces its rules (an admin only; never remove the last active admin) and this page
// shows its refusal in its own words.

import { api } from "../api.js";
import { confirm, el, field, notice, showProblem, time } from "../ui.js";
import { button, input, isAdmin, nextCursor, pageLinks, problemAlert, routeQuery } from "../resources-ui.js";

const ROLES = ["member", "approver", "admin"];

export async function render(root, params, ctx) {
  const query = routeQuery(params);
  root.replaceChildren(el("h1", {}, "Users"));
  if (!isAdmin(ctx.me)) {
    root.append(el("p", {}, "Only admins manage users."));
    return;
  }
  const alert = el("div", { class: "alert-slot" });
  const reload = () => render(root, params, ctx);
  const apiQuery = { limit: "50" };
  if (query.cursor) apiQuery.cursor = query.cursor;
  const response = await api("GET", "/v2/user/list", { query: apiQuery });
  root.append(
    el("h2", {}, "New user"),
    newUserForm(reload),
    el("h2", {}, "All users"),
    alert,
    userTable(response.data, ctx, alert, reload),
    pageLinks("#/users", query, nextCursor(response.headers)),
  );
}

/** Checkboxes named `roles`, one per role, each with its own label. */
function roleBoxes(prefix, checked) {
  const group = el("fieldset", { class: "roles" }, el("legend", {}, "Roles"));
  for (const role of ROLES) {
    const id = `${prefix}-role-${role}`;
    const box = el("input", { type: "checkbox", id, name: "roles", value: role });
    box.checked = checked.includes(role);
    group.append(el("span", { class: "check" }, box, el("label", { for: id }, role)));
  }
  return group;
}

function newUserForm(reload) {
  const form = el("form", { class: "edit", novalidate: "", "aria-label": "New user" });
  form.append(
    el("div", { class: "alert-slot" }),
    field("Email", input("email", { type: "email", autocomplete: "off", required: "" })),
    field("Password", input("password", { type: "password", autocomplete: "new-password", required: "" }), {
      hint: "At least 8 characters",
    }),
    field("Name", input("name", { autocomplete: "off" })),
    roleBoxes("new", ["member"]),
    el("button", { type: "submit", class: "primary" }, "Create"),
  );
  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    const data = new FormData(form);
    const body = {
      email: String(data.get("email") || "").trim(),
      password: String(data.get("password") || ""),
      name: String(data.get("name") || "").trim(),
      roles: data.getAll("roles").map(String),
    };
    try {
      await api("POST", "/v2/user/list", { body });
    } catch (error) {
      if (error.status) showProblem(form, error);
      else throw error;
      return;
    }
    notice(`User ${body.email} created.`);
    await reload();
  });
  return form;
}

function userTable(users, ctx, alert, reload) {
  const head = ["Email", "Name", "Roles", "Active", "Created", "Actions"];
  const rows = users.map((user) => {
    const prefix = `u-${user.id}`;
    const roles = el("form", { class: "inline", "aria-label": `Roles of ${user.email}` });
    roles.append(roleBoxes(prefix, user.roles), el("button", { type: "submit" }, "Save roles"));
    roles.addEventListener("submit", async (submitted) => {
      submitted.preventDefault();
      const chosen = new FormData(roles).getAll("roles").map(String);
      if (await change(user, { roles: chosen }, alert)) {
        notice(`Roles of ${user.email}: ${chosen.join(", ")}.`);
        await reload();
      }
    });
    const toggle = button(user.active ? "Disable" : "Enable", async () => {
      if (await change(user, { active: !user.active }, alert)) {
        notice(`${user.email} is ${user.active ? "disabled" : "enabled"}.`);
        await reload();
      }
    });
    const remove = button(
      "Delete",
      async () => {
        if (!(await confirm(`Delete the user ${user.email}? This cannot be undone.`))) return;
        try {
          await api("DELETE", `/v2/user/${user.id}`);
        } catch (error) {
          if (error.status) problemAlert(alert, error);
          else throw error;
          return;
        }
        notice(`User ${user.email} deleted.`);
        await reload();
      },
      { class: "danger" },
    );
    const cells = [
      user.id === ctx.me.id ? `${user.email} (you)` : user.email,
      user.name || "",
      roles,
      user.active ? "yes" : "no (disabled)",
      time(user.createdAt),
      el("div", { class: "actions" }, toggle, remove),
    ];
    return el(
      "tr",
      { "data-email": user.email },
      ...cells.map((cell, i) => el("td", { "data-label": head[i] }, cell)),
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

/** PATCH a user; a refusal (the last admin's 409, a 422) shows in the API's words. */
async function change(user, patch, alert) {
  alert.replaceChildren();
  try {
    await api("PATCH", `/v2/user/${user.id}`, {
      body: patch,
      headers: { "Content-Type": "application/merge-patch+json" },
    });
    return true;
  } catch (error) {
    if (!error.status) throw error;
    problemAlert(alert, error);
    return false;
  }
}
