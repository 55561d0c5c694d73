// Subscriptions: the user's own (an administrator sees everyone's).
import { api } from "../api.js";
import { el, table, time } from "../ui.js";

export async function render(root) {
  const { data } = await api("GET", "/v2/subscription/list");
  const items = Array.isArray(data) ? data : data.items || [];
  root.append(
    el("h1", {}, "Subscriptions"),
    el("div", { class: "actions" }, el("a", { class: "button", href: "#/subscriptions/new" }, "New subscription")),
    table(
      [
        { label: "URL", cell: (s) => el("a", { href: `#/subscriptions/${encodeURIComponent(s.id)}` }, s.url) },
        { label: "Created", cell: (s) => time(s.createdAt) },
      ],
      items,
      { caption: "Subscriptions", empty: "No subscriptions yet." },
    ),
  );
}
