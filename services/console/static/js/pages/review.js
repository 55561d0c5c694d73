// #/review: pending events for approvers and admins, with Approve and Reject in place.

import { api } from "../api.js";
import { el, notice } from "../ui.js";
import { button, isReviewer, nextCursor, pageLinks, routeQuery } from "../resources-ui.js";
import { eventTable, locationNames } from "./events.js";
import { takeStep } from "./event.js";

export async function render(root, params, ctx) {
  const query = routeQuery(params);
  const alert = el("div", { class: "alert-slot" });
  root.replaceChildren(el("h1", {}, "To review"), alert);
  if (!isReviewer(ctx.me)) {
    root.append(el("p", {}, "Only approvers and admins review events."));
    return;
  }
  const apiQuery = { status: "pending", sort: "startsAt", limit: "25" };
  if (query.cursor) apiQuery.cursor = query.cursor;
  const [names, response] = await Promise.all([
    locationNames().then((pairs) => new Map(pairs)),
    api("GET", "/v2/event/list", { query: apiQuery }),
  ]);
  // The four-eyes rule: nobody reviews their own events; the API refuses, so they are not offered.
  const events = response.data.filter((event) => event.ownerId !== ctx.me.id);
  const reload = () => render(root, params, ctx);
  if (!events.length) {
    root.append(el("p", { class: "empty" }, "Nothing waits for your review."));
  } else {
    root.append(
      eventTable(events, names, {
        label: "Review",
        cell: (event) =>
          el(
            "div",
            { class: "actions" },
            ...["approve", "reject"].map((step) => {
              const label = step === "approve" ? "Approve" : "Reject";
              return button(
                label,
                async () => {
                  const done = await takeStep(event, step, "", alert, reload);
                  if (!done) return;
                  notice(`${label}d: “${event.title}” is now ${done.status}.`);
                  await reload();
                },
                { "aria-label": `${label} “${event.title}”` },
              );
            }),
          ),
      }),
    );
  }
  root.append(pageLinks("#/review", query, nextCursor(response.headers)));
}
