// #/users (admins): every user; create with roles; change roles; disable or enable; delete.
// The API enforces the rules (admins only; never remove the last active admin): this page
// shows its refusals in its own words.

import { api } from "../api.js";
import { action, confirm, el, field, group, notice, showProblem, table, time } from "../ui.js";
import { input, isAdmin, pages, refusal } from "../resources-ui.js";

const ROLES = ["member", "approver", "admin"];

export async function render(root, params, ctx) {
  root.append(el("h1", {}, "Users"));
  if (!isAdmin(ctx.me)) {
    root.append(el("p", {}, "Only admins manage users."));
    return;
  }
  const response = await api("GET", "/v2/user/list", { query: { limit: "50", cursor: params.cursor } });
  if (ctx.stale()) return; // another page was opened meanwhile
  const alert = el("div", { class: "alert-slot" });
  const reload = () => ctx.navigate(window.location.hash);
  root.append(
    el("h2", {}, "New user"),
    newUserForm(reload),
    el("h2", {}, "All users"),
    alert,
    userTable(response.data, ctx, alert, reload),
    pages("#/users", params, response.headers, ctx),
  );
}

/** One checkbox named `roles` per role, each with its role as its label. */
function roleBoxes(prefix, checked) {
  return group(
    "Roles",
    el(
      "div",
      { class: "inline" },
      ROLES.map((role) =>
        field(role, el("input", { type: "checkbox", id: `${prefix}-${role}`, name: "roles", value: role, checked: checked.includes(role) })),
      ),
    ),
    { name: "roles" },
  );
}

function newUserForm(reload) {
  const form = el(
    "form",
    { class: "card", novalidate: true, "aria-label": "New user" },
    field("Email", input("email", { type: "email", autocomplete: "off", required: true })),
    field("Password", input("password", { type: "password", autocomplete: "new-password", required: true }), {
      hint: "At least 8 characters.",
    }),
    field("Name", input("name", { autocomplete: "off" })),
    roleBoxes("new-role", ["member"]),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Create")),
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
      if (!error.status) throw error;
      showProblem(form, error);
      return;
    }
    notice(`User ${body.email} created.`);
    reload();
  });
  return form;
}

function rolesForm(user, alert, reload) {
  const form = el(
    "form",
    { class: "inline", "aria-label": `Roles of ${user.email}` },
    roleBoxes(`role-${user.id}`, user.roles),
    el("button", { type: "submit", class: "secondary" }, "Save roles"),
  );
  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    const roles = new FormData(form).getAll("roles").map(String);
    if (await change(user, { roles }, alert, reload)) {
      notice(`Roles of ${user.email}: ${roles.join(", ")}.`);
      reload();
    }
  });
  return form;
}

function userActions(user, alert, reload) {
  const toggle = action(user.active ? "Disable" : "Enable", async () => {
    if (await change(user, { active: !user.active }, alert, reload)) {
      notice(`${user.email} is ${user.active ? "disabled: their tokens are refused" : "enabled"}.`);
      reload();
    }
  }, { class: "secondary", "aria-label": `${user.active ? "Disable" : "Enable"} ${user.email}` });
  const remove = action(
    "Delete",
    async () => {
      const sure = await confirm(`Delete the user ${user.email}? This cannot be undone.`, { yes: "Delete", danger: true });
      if (!sure) return;
      alert.replaceChildren();
      try {
        await api("DELETE", `/v2/user/${user.id}`);
      } catch (error) {
        refusal(alert, error, reload, "user");
        alert.scrollIntoView({ block: "nearest" });
        return;
      }
      notice(`User ${user.email} deleted.`);
      reload();
    },
    { class: "danger", "aria-label": `Delete ${user.email}` },
  );
  return el("div", { class: "actions" }, toggle, remove);
}

function userTable(users, ctx, alert, reload) {
  return table(
    [
      { label: "Email", cell: (u) => (u.id === ctx.me.id ? `${u.email} (you)` : u.email) },
      { label: "Name", cell: (u) => u.name || "" },
      { label: "Roles", cell: (u) => rolesForm(u, alert, reload) },
      { label: "Active", cell: (u) => (u.active ? "yes" : "no (disabled)") },
      { label: "Created", cell: (u) => time(u.createdAt) },
      { label: "Actions", cell: (u) => userActions(u, alert, reload) },
    ],
    users,
    { caption: "All users", empty: "No users." },
  );
}

/** PATCH a user; a refusal (the last admin's 409, a 422) shows in the API's words. */
async function change(user, patch, alert, reload) {
  alert.replaceChildren();
  try {
    await api("PATCH", `/v2/user/${user.id}`, { body: patch });
    return true;
  } catch (error) {
    refusal(alert, error, reload, "user");
    alert.scrollIntoView({ block: "nearest" });
    return false;
  }
}
