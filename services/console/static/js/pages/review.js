// #/review: pending events for approvers and admins, with Approve and Reject in place.

import { api } from "../api.js";
import { action, el, field, notice } from "../ui.js";
import { hashWith, input, isReviewer, pages } from "../resources-ui.js";
import { eventTable, locationNames } from "./events.js";
import { takeStep } from "./event.js";

const STEPS = [
  ["approve", "Approve", "Approved"],
  ["reject", "Reject", "Rejected"],
];

export async function render(root, params, ctx) {
  const alert = el("div", { class: "alert-slot" });
  root.append(el("h1", {}, "To review"), alert);
  if (!isReviewer(ctx.me)) {
    root.append(el("p", {}, "Only approvers and admins review events."));
    return;
  }
  const search = el(
    "form",
    { class: "inline card", role: "search", "aria-label": "Find pending events" },
    field("Search", input("q", { type: "search", value: params.q || "" })),
    el("button", { type: "submit" }, "Search"),
  );
  search.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.navigate(hashWith("#/review", { q: new FormData(search).get("q") }));
  });
  root.append(search);
  const query = { status: "pending", sort: "startsAt", limit: "25", q: params.q, cursor: params.cursor };
  const [locations, response] = await Promise.all([locationNames(), api("GET", "/v2/event/list", { query })]);
  if (ctx.stale()) return; // another page was opened meanwhile
  // Nobody reviews their own event (the four-eyes rule): the API would refuse, so not offered.
  const events = response.data.filter((event) => event.ownerId !== ctx.me.id);
  const reload = () => ctx.navigate(window.location.hash);
  const review = {
    label: "Review",
    cell: (event) =>
      el(
        "div",
        { class: "actions" },
        STEPS.map(([step, label, done]) =>
          action(
            label,
            async () => {
              const after = await takeStep(event, step, "", alert, reload);
              if (!after) return;
              notice(`${done}: “${event.title}”.`);
              reload();
            },
            { "aria-label": `${label} “${event.title}”`, class: step === "reject" ? "secondary" : "" },
          ),
        ),
      ),
  };
  root.append(
    el("p", { class: "muted" }, "Pending events by others, earliest first. Open one to comment on your decision."),
    eventTable(events, new Map(locations), { caption: "Pending events", empty: "Nothing waits for your review." }, [review]),
    pages("#/review", params, response.headers, ctx),
  );
}
