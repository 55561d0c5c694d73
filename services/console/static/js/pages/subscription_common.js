// What the subscription pages share: the path of a subscription and how a status reads.
import { el } from "../ui.js";

export const subPath = (id) => `/v2/subscription/${encodeURIComponent(id)}`;

// A status as a word with a shape (never colour alone).
export function statusBadge(status) {
  const kind = { succeeded: "ok", failed: "bad", pending: "wait", skipped: "off" }[status] || "off";
  return el("span", { class: `status ${kind}` }, status);
}

export function activeBadge(subscription) {
  return subscription.active
    ? el("span", { class: "status ok" }, "Active")
    : el("span", { class: "status off", title: subscription.disabledReason || "" }, "Disabled");
}

export function lastAttempt(delivery) {
  const attempts = delivery.attempts || [];
  return attempts.length ? attempts[attempts.length - 1] : null;
}

export function ms(value) {
  return value === null || value === undefined ? "—" : `${Math.round(value)} ms`;
}

export function secretBlock(secret) {
  return [
    el("p", {}, "Keep it now: it verifies the webhook-signature header of every delivery. “Show secret” shows it again."),
    el("code", { class: "secret", tabindex: "0" }, secret),
  ];
}
