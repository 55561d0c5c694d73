// Create a subscription (POST /v2/subscription/list) or edit one (PUT with If-Match): URL,
// topics from the catalog, filter (JSON), rate limit, extra headers, description, active.
import { api, ApiError } from "../api.js";
import { clearProblems, el, field, group, showDialog, showProblem } from "../ui.js";
import { secretBlock, subPath } from "./subscription_common.js";

function headerRow(name = "", value = "") {
  const nameInput = el("input", { type: "text", class: "header-name", value: name, autocomplete: "off", spellcheck: false });
  const valueInput = el("input", { type: "text", class: "header-value", value: value, autocomplete: "off", spellcheck: false });
  const row = el("div", { class: "row", dataset: { field: "" } });
  row.append(
    field("Header name", nameInput),
    field("Header value", valueInput),
    el("button", { type: "button", class: "secondary", onclick: () => row.remove() }, "Remove header"),
    el("p", { class: "error", hidden: true }),
  );
  return row;
}

export async function render(root, params, ctx) {
  const editing = Boolean(params.id);
  const [topicsAnswer, current] = await Promise.all([
    api("GET", "/v2/topic/list"),
    editing ? api("GET", subPath(params.id)) : Promise.resolve(null),
  ]);
  if (ctx.stale()) return;
  const catalog = topicsAnswer.data || [];
  const sub = current ? current.data : { url: "", topics: [], filter: null, rateLimit: null, headers: {}, description: "", active: true };
  let etag = current ? current.headers.get("ETag") : null;
  const known = new Set(catalog.map((t) => t.name));

  const url = el("input", { type: "url", name: "url", value: sub.url, required: true, placeholder: "https://hooks.example.com/herald", spellcheck: false });
  const topicBoxes = catalog.map((topic) => {
    const box = el("input", { type: "checkbox", value: topic.name, checked: sub.topics.includes(topic.name), id: `topic-${topic.name.replace(/[^a-z0-9]/gi, "-")}` });
    return el("li", {}, box, el("label", { for: box.id }, el("span", { class: "mono" }, topic.name), el("span", { class: "hint" }, " — ", topic.description)));
  });
  const patterns = el("input", { type: "text", name: "patterns", value: sub.topics.filter((t) => !known.has(t)).join(", "), placeholder: "event.*", spellcheck: false });
  const filter = el("textarea", { name: "filter", rows: 5, spellcheck: false, placeholder: '{"data.capacity": {"gte": 50}}' }, sub.filter ? JSON.stringify(sub.filter, null, 2) : "");
  const rate = el("input", { type: "number", name: "rateLimit", min: 1, max: 10000, step: 1, inputmode: "numeric", value: sub.rateLimit ?? "" });
  const rows = el("div", { class: "rows" }, Object.entries(sub.headers || {}).map(([n, v]) => headerRow(n, v)));
  const description = el("textarea", { name: "description", rows: 2 }, sub.description || "");
  const active = el("input", { type: "checkbox", name: "active", checked: sub.active });
  const submit = el("button", { type: "submit" }, editing ? "Save" : "Create");

  const form = el(
    "form",
    { class: "card", novalidate: true },
    field("URL", url, { hint: "Where Herald POSTs each webhook (http or https)." }),
    group("Topics", el("ul", { class: "topics" }, topicBoxes), { name: "topics", hint: "The events to receive." }),
    field("Topic patterns", patterns, { name: "topics", hint: "Optional, comma separated: “event.*” (every topic of a prefix) or “*” (all)." }),
    field("Filter", filter, { hint: "Optional JSON: conditions every delivered event must meet (docs/filters.md). Empty: every event." }),
    field("Rate limit", rate, { hint: "Optional: at most this many deliveries a second." }),
    group("Extra headers", [rows, el("button", { type: "button", class: "secondary", onclick: () => rows.append(headerRow()) }, "Add header")], {
      name: "headers",
      hint: "Sent with every delivery (for example an Authorization your receiver checks).",
    }),
    field("Description", description),
    field("Active", active, { hint: "Off: nothing is delivered (events are recorded as skipped)." }),
    el("div", { class: "actions" }, submit, el("a", { class: "button secondary", href: editing ? `#/subscriptions/${encodeURIComponent(params.id)}` : "#/subscriptions" }, "Cancel")),
  );

  function payload() {
    const topics = [
      ...topicBoxes.map((li) => li.querySelector("input")).filter((b) => b.checked).map((b) => b.value),
      ...patterns.value.split(",").map((t) => t.trim()).filter(Boolean),
    ];
    let parsedFilter = null;
    if (filter.value.trim()) {
      try {
        parsedFilter = JSON.parse(filter.value);
      } catch (error) {
        throw new ApiError(422, { title: "Unprocessable Content", detail: "The filter is not valid JSON.", errors: [{ field: "filter", message: `not valid JSON: ${error.message}` }] });
      }
    }
    const headers = {};
    for (const row of rows.querySelectorAll(".row")) {
      const name = row.querySelector(".header-name").value.trim();
      row.dataset.field = name ? `headers.${name}` : "";
      if (name) headers[name] = row.querySelector(".header-value").value;
    }
    return {
      url: url.value.trim(),
      topics,
      filter: parsedFilter,
      rateLimit: rate.value === "" ? null : Number(rate.value),
      headers,
      description: description.value,
      active: active.checked,
    };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems(form);
    submit.disabled = true;
    try {
      const body = payload();
      if (editing) {
        const { data, headers } = await api("PUT", subPath(params.id), { body, headers: etag ? { "If-Match": etag } : {} });
        etag = headers.get("ETag");
        ctx.navigate(`#/subscriptions/${encodeURIComponent(data.id)}`);
      } else {
        const { data } = await api("POST", "/v2/subscription/list", { body });
        await showDialog("The subscription's secret", secretBlock(data.secret));
        ctx.navigate(`#/subscriptions/${encodeURIComponent(data.id)}`);
      }
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 412) {
        error.problem = { ...error.problem, detail: "Someone changed this subscription after you opened it. Reload the page to see their change, then edit again." };
      }
      showProblem(form, error);
    } finally {
      submit.disabled = false;
    }
  });

  root.append(el("h1", {}, editing ? "Edit subscription" : "New subscription"), form);
  url.focus();
}
