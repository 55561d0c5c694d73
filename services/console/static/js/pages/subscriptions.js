// Subscriptions: the user's own (an administrator sees everyone's), each with its status and
// the outcome of its last delivery.
import { api, nextLink } from "../api.js";
import { el, pager, put, table, time } from "../ui.js";
import { activeBadge, statusBadge, subPath } from "./subscription_common.js";

async function lastDelivery(subscription) {
  try {
    const { data } = await api("GET", `${subPath(subscription.id)}/deliveries`, { query: { limit: 1 } });
    return (data || [])[0] || null;
  } catch {
    return null; // the list still shows; the cell says nothing is known
  }
}

export async function render(root, params, ctx) {
  const path = params.page && params.page.startsWith("/v2/subscription/list") ? params.page : "/v2/subscription/list";
  const { data, headers } = await api("GET", path);
  const items = data || [];
  const lasts = await Promise.all(items.map(lastDelivery));
  const next = nextLink(headers);
  const admin = (ctx.me.roles || []).includes("admin");
  const columns = [
    { label: "URL", cell: (s) => el("a", { href: `#/subscriptions/${encodeURIComponent(s.id)}`, class: "mono" }, s.url) },
    { label: "Topics", cell: (s) => s.topics.join(", ") },
    { label: "Status", cell: (s) => activeBadge(s) },
    {
      label: "Last delivery",
      cell: (s) => {
        const last = lasts[items.indexOf(s)];
        if (!last) return el("span", { class: "muted" }, "none yet");
        return el("span", {}, statusBadge(last.status), " ", last.topic, " · ", time(last.updatedAt));
      },
    },
  ];
  if (admin) columns.push({ label: "Owner", cell: (s) => el("span", { class: "mono" }, s.ownerId) });
  if (ctx.stale()) return;
  put(root, 
    el("h1", {}, "Subscriptions"),
    el("p", {}, admin ? "Every user's webhook subscriptions (you are an administrator)." : "Your webhook subscriptions."),
    el("div", { class: "actions" }, el("a", { class: "button", href: "#/subscriptions/new" }, "New subscription")),
    table(columns, items, { caption: "Subscriptions", empty: "No subscriptions yet: create one with “New subscription”." }),
    pager(next, (link) => ctx.navigate(`#/subscriptions?page=${encodeURIComponent(link)}`), {
      onFirst: params.page ? () => ctx.navigate("#/subscriptions") : null,
    }),
  );
}
