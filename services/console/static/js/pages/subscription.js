// One subscription: its settings and actions (secret, test ping, disable/enable, delete), the
// chart of its deliveries, the delivery table (paged, filtered by status) and sending again
// over a time window (recover failed, replay).
import { api, ApiError, nextLink } from "../api.js";
import { chart, chartTable, legend } from "../chart.js";
import { action, clear, confirm, el, facts, field, notice, pager, problemBlock, put, showDialog, showProblem, table, time } from "../ui.js";
import { activeBadge, lastAttempt, ms, secretBlock, statusBadge, subPath } from "./subscription_common.js";

const STATUSES = ["pending", "succeeded", "failed", "skipped"];
const BUCKETS = ["minute", "hour", "day"];
const REFRESH_MS = 3000;

function settings(sub) {
  return facts([
    ["URL", el("span", { class: "mono" }, sub.url)],
    ["Status", el("span", {}, activeBadge(sub), sub.disabledReason ? ` ${sub.disabledReason}` : "")],
    ["Topics", sub.topics.join(", ")],
    ["Filter", sub.filter ? el("pre", {}, JSON.stringify(sub.filter, null, 2)) : el("span", { class: "muted" }, "none (every event)")],
    ["Rate limit", sub.rateLimit ? `${sub.rateLimit} a second` : el("span", { class: "muted" }, "none")],
    ["Extra headers", Object.keys(sub.headers || {}).length ? Object.keys(sub.headers).join(", ") : el("span", { class: "muted" }, "none")],
    ["Description", sub.description || el("span", { class: "muted" }, "none")],
    ["Created", time(sub.createdAt)],
    ["Updated", time(sub.updatedAt)],
  ]);
}

// datetime-local (the browser's zone) -> RFC 3339 UTC, or undefined when empty.
function utc(input) {
  if (!input.value) return undefined;
  const date = new Date(input.value);
  return Number.isNaN(date.getTime()) ? input.value : date.toISOString();
}

function localValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export async function render(root, params, ctx) {
  const id = params.id;
  let { data: sub, headers } = await api("GET", subPath(id));
  let etag = headers.get("ETag");
  if (ctx.stale()) return;

  const heading = el("h1", {}, "Subscription");
  const factsSlot = el("div", {});
  const statsSlot = el("div", { class: "chart" });
  const deliveriesSlot = el("div", {});
  // The page shown (a Link of the API; null: the first). `?limit=` in the address sets the
  // page size (the API's default otherwise).
  let deliveriesPath = null;
  const statusFilter = el("select", { name: "status" }, el("option", { value: "" }, "Every status"), STATUSES.map((s) => el("option", { value: s }, s)));
  if (params.status) statusFilter.value = params.status;
  const bucket = el("select", { name: "bucket" }, BUCKETS.map((b) => el("option", { value: b }, b)));
  bucket.value = BUCKETS.includes(params.bucket) ? params.bucket : "hour";

  const toggle = action(sub.active ? "Disable" : "Enable", async () => {
    try {
      const answer = await api("PATCH", subPath(id), { body: { active: !sub.active }, headers: { "Content-Type": "application/merge-patch+json", ...(etag ? { "If-Match": etag } : {}) } });
      sub = answer.data;
      etag = answer.headers.get("ETag");
      drawFacts();
      notice(sub.active ? "Enabled: deliveries resume." : "Disabled: nothing is delivered until you enable it.");
    } catch (error) {
      report(error);
    }
  });

  function report(error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 401) return;
    const detail = error.status === 412 ? "Someone changed this subscription meanwhile: reload the page." : error.problem.detail || error.message;
    notice(`${error.problem.title || "Error"}: ${detail}`, { kind: "error" });
  }

  function drawFacts() {
    heading.textContent = `Subscription ${sub.url}`;
    toggle.textContent = sub.active ? "Disable" : "Enable";
    put(clear(factsSlot), settings(sub));
  }

  let tableOpen = false;
  async function loadStats() {
    try {
      const { data } = await api("GET", `${subPath(id)}/stats`, { query: { bucket: bucket.value } });
      const details = el("details", { open: tableOpen }, el("summary", {}, "The chart as a table"), chartTable(data));
      details.addEventListener("toggle", () => {
        tableOpen = details.open;
      });
      put(clear(statsSlot), legend(), chart(data, bucket.value), details);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      put(clear(statsSlot), problemBlock(error));
    }
  }

  function retryButton(delivery) {
    return action("Retry", async () => {
      try {
        await api("POST", `${subPath(id)}/deliveries/${encodeURIComponent(delivery.id)}/retry`);
        notice("Sent again: it is due now.");
        await loadDeliveries();
      } catch (error) {
        report(error);
      }
    }, { class: "secondary", "aria-label": `Retry delivery ${delivery.id}` });
  }

  async function loadDeliveries() {
    const path = deliveriesPath || `${subPath(id)}/deliveries`;
    try {
      const answer = await api("GET", path, { query: deliveriesPath ? undefined : { status: statusFilter.value, limit: params.limit } });
      const rows = answer.data || [];
      const columns = [
        { label: "Status", cell: (d) => el("a", { href: `#/subscriptions/${encodeURIComponent(id)}/deliveries/${encodeURIComponent(d.id)}`, "aria-label": `${d.status}: delivery ${d.id}` }, statusBadge(d.status)) },
        { label: "Event type", cell: (d) => d.topic },
        { label: "Event id", cell: (d) => el("span", { class: "mono" }, d.eventId) },
        { label: "Attempts", cell: (d) => String(d.attemptCount), class: "num" },
        { label: "Last attempt", cell: (d) => (lastAttempt(d) ? time(lastAttempt(d).at) : el("span", { class: "muted" }, "not yet")) },
        { label: "Last response status", cell: (d) => (d.lastStatusCode === null || d.lastStatusCode === undefined ? (d.lastError ? el("span", { title: d.lastError }, "no answer") : "—") : String(d.lastStatusCode)), class: "num" },
        { label: "Duration", cell: (d) => ms(lastAttempt(d)?.durationMs), class: "num" },
        { label: "Actions", cell: (d) => (d.status === "failed" || d.status === "skipped" ? retryButton(d) : null) },
      ];
      put(clear(deliveriesSlot), 
        table(columns, rows, { caption: "Deliveries, newest first", empty: statusFilter.value ? `No ${statusFilter.value} deliveries.` : "No deliveries yet." }),
        pager(nextLink(answer.headers), (link) => {
          deliveriesPath = link;
          loadDeliveries();
        }, {
          onFirst: deliveriesPath
            ? () => {
                deliveriesPath = null;
                loadDeliveries();
              }
            : null,
        }),
      );
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      put(clear(deliveriesSlot), problemBlock(error));
    }
  }

  const actions = el(
    "div",
    { class: "actions" },
    el("a", { class: "button secondary", href: `#/subscriptions/${encodeURIComponent(id)}/edit` }, "Edit"),
    action("Show secret", async () => {
      try {
        const { data } = await api("GET", `${subPath(id)}/secret`);
        await showDialog("The subscription's secret", secretBlock(data.secret), data.previousSecret ? el("p", {}, "The previous secret signs too until ", time(data.previousSecretExpiresAt), ".") : null);
      } catch (error) {
        report(error);
      }
    }, { class: "secondary" }),
    action("Rotate secret", async () => {
      if (!(await confirm("Make a new signing secret? The current one keeps signing for a while (the overlap), so update your receiver soon.", { yes: "Rotate secret" }))) return;
      try {
        const { data } = await api("POST", `${subPath(id)}/secret/rotate`);
        await showDialog("The new secret", secretBlock(data.secret));
      } catch (error) {
        report(error);
      }
    }, { class: "secondary" }),
    action("Send test ping", async () => {
      try {
        await api("POST", `${subPath(id)}/ping`);
        notice("Ping sent: it shows in the deliveries below.");
        deliveriesPath = null;
        await loadDeliveries();
      } catch (error) {
        report(error);
      }
    }, { class: "secondary" }),
    toggle,
    action("Delete", async () => {
      if (!(await confirm(`Delete the subscription to ${sub.url}? Its deliveries go with it. This cannot be undone.`, { yes: "Delete", danger: true }))) return;
      try {
        await api("DELETE", subPath(id), { headers: etag ? { "If-Match": etag } : {} });
        notice("Subscription deleted.");
        ctx.navigate("#/subscriptions");
      } catch (error) {
        report(error);
      }
    }, { class: "danger" }),
  );

  // Send again over a window: recover (failed and skipped deliveries) or replay (every event).
  const since = el("input", { type: "datetime-local", name: "since", required: true, value: localValue(new Date(Date.now() - 3600_000)) });
  const until = el("input", { type: "datetime-local", name: "until" });
  const windowForm = el(
    "form",
    { class: "card", novalidate: true },
    el("p", { class: "hint" }, "Times are in your browser's zone; Herald receives them in UTC."),
    el("div", { class: "inline" }, field("Since", since), field("Until", until, { hint: "Empty: now." })),
    el(
      "div",
      { class: "actions" },
      ...[
        ["Recover failed", "recover", (d) => (d.deliveries === 1 ? "1 failed or skipped delivery is being sent again." : `${d.deliveries} failed or skipped deliveries are being sent again.`)],
        ["Replay", "replay", (d) => (d.events === 1 ? "1 event is being sent again as a new delivery." : `${d.events} events are being sent again as new deliveries.`)],
      ].map(([label, verb, said]) =>
        action(label, async () => {
          try {
            const { data } = await api("POST", `${subPath(id)}/${verb}`, { body: { since: utc(since), ...(until.value ? { until: utc(until) } : {}) } });
            notice(said(data));
            windowForm.querySelector(".form-alert")?.remove();
            deliveriesPath = null;
            await loadDeliveries();
          } catch (error) {
            if (!(error instanceof ApiError)) throw error;
            showProblem(windowForm, error);
          }
        }, { class: "secondary" }),
      ),
    ),
  );
  windowForm.addEventListener("submit", (event) => event.preventDefault());

  statusFilter.addEventListener("change", () => {
    deliveriesPath = null;
    loadDeliveries();
  });
  bucket.addEventListener("change", loadStats);

  drawFacts();
  put(root, 
    el("p", {}, el("a", { href: "#/subscriptions" }, "← Subscriptions")),
    heading,
    actions,
    factsSlot,
    el("h2", {}, "Deliveries over time"),
    el("div", { class: "inline" }, field("Bucket", bucket)),
    statsSlot,
    el("h2", {}, "Deliveries"),
    el("div", { class: "inline" }, field("Status", statusFilter), el("button", { type: "button", class: "secondary", onclick: () => { loadDeliveries(); loadStats(); } }, "Refresh")),
    deliveriesSlot,
    el("h2", {}, "Send again"),
    windowForm,
  );
  await Promise.all([loadStats(), loadDeliveries()]);

  // New deliveries show as they happen: the first page and the chart are read again every few
  // seconds while this page is shown, unless the user is busy in them (focus, a dialog).
  const timer = setInterval(() => {
    if (ctx.stale() || !root.contains(deliveriesSlot)) {
      clearInterval(timer);
      return;
    }
    const busy = document.querySelector("dialog[open]") || deliveriesSlot.contains(document.activeElement) || statsSlot.contains(document.activeElement);
    if (!busy && !deliveriesPath && document.visibilityState === "visible") {
      loadDeliveries();
      loadStats();
    }
  }, REFRESH_MS);
}
