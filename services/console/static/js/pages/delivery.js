// One delivery: each attempt with the request headers sent (credentials masked by the API),
// the response status, the duration and the first KiB of the answer; "Retry".
import { api, ApiError } from "../api.js";
import { action, clear, el, facts, notice, put, table, time } from "../ui.js";
import { ms, statusBadge, subPath } from "./subscription_common.js";

const REFRESH_MS = 2000;

function attemptBlock(attempt, index) {
  const headers = Object.entries(attempt.requestHeaders || {});
  return el(
    "section",
    { class: "attempt", "aria-labelledby": `attempt-${index}` },
    el("h3", { id: `attempt-${index}` }, `Attempt ${index + 1}`),
    facts([
      ["Sent", time(attempt.at)],
      ["Response status", attempt.statusCode === null ? "no answer" : String(attempt.statusCode)],
      ["Duration", ms(attempt.durationMs)],
      attempt.error ? ["Error", attempt.error] : null,
    ]),
    table(
      [
        { label: "Header", cell: ([name]) => el("span", { class: "mono" }, name) },
        { label: "Value", cell: ([, value]) => el("span", { class: "mono" }, value) },
      ],
      headers,
      { caption: "Request headers", empty: "None recorded." },
    ),
    el("h4", {}, "Response body (first KiB)"),
    attempt.responseBody ? el("pre", {}, attempt.responseBody) : el("p", { class: "muted" }, "empty"),
  );
}

function summary(delivery) {
  return [
    el("h1", {}, `Delivery of ${delivery.topic}`),
    facts([
      ["Status", statusBadge(delivery.status)],
      ["Event type", delivery.topic],
      ["Event id", el("span", { class: "mono" }, delivery.eventId)],
      ["Delivery id", el("span", { class: "mono" }, delivery.id)],
      ["Attempts", String(delivery.attemptCount)],
      delivery.nextAttemptAt ? ["Next attempt", time(delivery.nextAttemptAt)] : null,
      ["Created", time(delivery.createdAt)],
    ]),
  ];
}

export async function render(root, params, ctx) {
  const path = `${subPath(params.id)}/deliveries/${encodeURIComponent(params.deliveryId)}`;
  const top = el("div", {});
  const attempts = el("div", {});
  let timer = null;

  async function load() {
    const { data: delivery } = await api("GET", path);
    if (ctx.stale()) return;
    put(clear(top), summary(delivery));
    put(clear(attempts), delivery.attempts.length ? delivery.attempts.map(attemptBlock) : el("p", { class: "empty" }, "No attempt yet."));
    // A pending delivery is read again until it is done: its next attempt shows as it happens.
    clearTimeout(timer);
    if (delivery.status === "pending") {
      timer = setTimeout(() => {
        if (!ctx.stale()) load().catch(() => {});
      }, REFRESH_MS);
    }
  }

  await load();
  if (ctx.stale()) return;
  const retry = action("Retry", async () => {
    try {
      await api("POST", `${path}/retry`);
      notice("Sent again: it is due now.");
      await load();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status !== 401) notice(`${error.problem.title || "Error"}: ${error.problem.detail || error.message}`, { kind: "error" });
    }
  });
  put(root, 
    el("p", {}, el("a", { href: `#/subscriptions/${encodeURIComponent(params.id)}` }, "← The subscription")),
    top,
    el("div", { class: "actions" }, retry, action("Refresh", () => load().catch(() => {}), { class: "secondary" })),
    el("h2", {}, "Attempts"),
    attempts,
  );
}
