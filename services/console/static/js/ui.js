// DOM building for the pages: data only ever enters the page as text (no innerHTML of data).

let fieldCounter = 0;

// el("a", {href: "#/x", class: "c", onclick: fn, dataset: {...}}, "text", child, [more])
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "class") node.className = value;
    else if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Keeps the SVG namespace (charts).
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  append(node, children);
  return node;
}

// node.append for what pages build: arrays flattened, null/undefined/false skipped.
export function put(node, ...children) {
  append(node, children);
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

// A labelled field: <div class="field"><label for>…</label>input<p hint><p error></div>.
// `name` (the API's field name, for showProblem) defaults to the input's name.
export function field(label, input, { hint, name } = {}) {
  if (!input.id) input.id = `f${++fieldCounter}`;
  const wrapper = el("div", { class: "field", dataset: { field: name || input.name || "" } });
  const error = el("p", { class: "error", id: `${input.id}-error`, hidden: true });
  const described = [];
  let hintNode = null;
  if (hint) {
    hintNode = el("p", { class: "hint", id: `${input.id}-hint` }, hint);
    described.push(hintNode.id);
  }
  described.push(error.id);
  input.setAttribute("aria-describedby", described.join(" "));
  const isCheck = input.type === "checkbox" || input.type === "radio";
  const labelNode = el("label", { for: input.id }, label);
  if (isCheck) wrapper.classList.add("check");
  wrapper.append(...(isCheck ? [input, labelNode] : [labelNode, input]));
  if (hintNode) wrapper.append(hintNode);
  wrapper.append(error);
  return wrapper;
}

// A group of controls under one name (a fieldset with a legend), with an error slot.
export function group(legend, controls, { hint, name } = {}) {
  const error = el("p", { class: "error", hidden: true });
  return el(
    "fieldset",
    { class: "field group", dataset: { field: name || "" } },
    el("legend", {}, legend),
    hint ? el("p", { class: "hint" }, hint) : null,
    controls,
    error,
  );
}

export function clearProblems(form) {
  for (const node of form.querySelectorAll(".error")) {
    node.textContent = "";
    node.hidden = true;
  }
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  const alert = form.querySelector(":scope > .form-alert");
  if (alert) alert.remove();
}

function fieldFor(form, path) {
  // The field the path names, or the nearest named one: filter.data.capacity.gt -> filter.
  const parts = String(path || "").split(".");
  while (parts.length) {
    const name = parts.join(".");
    const found = [...form.querySelectorAll("[data-field]")].find((node) => node.dataset.field === name);
    if (found) return found;
    parts.pop();
  }
  return null;
}

// Shows an ApiError on a form: each `errors[]` message on the field it names, the detail at
// the top in a role="alert" element. Returns true when something was shown.
export function showProblem(form, error) {
  clearProblems(form);
  const problem = (error && error.problem) || {};
  const unplaced = [];
  for (const item of problem.errors || []) {
    const target = fieldFor(form, item.field);
    if (!target) {
      unplaced.push(item.field && item.field !== "(body)" ? `${item.field}: ${item.message}` : item.message);
      continue;
    }
    const slot = target.querySelector(".error");
    // On the nearest field of a longer path, the message says where inside it.
    const message = target.dataset.field === item.field ? item.message : `${item.field}: ${item.message}`;
    slot.textContent = slot.textContent ? `${slot.textContent} ${message}` : message;
    slot.hidden = false;
    // A group of checkboxes is marked as a whole (its legend and message), not box by box.
    const controls = target.matches(".group") ? [] : target.querySelectorAll("input, select, textarea");
    for (const input of controls) input.setAttribute("aria-invalid", "true");
  }
  const text = problem.detail || problem.title || (error && error.message) || "Something went wrong.";
  const alert = el(
    "div",
    { class: "form-alert", role: "alert" },
    el("p", {}, text),
    unplaced.length ? el("ul", {}, unplaced.map((m) => el("li", {}, m))) : null,
  );
  form.prepend(alert);
  const first = form.querySelector("[aria-invalid]");
  (first || alert).focus?.();
  return true;
}

// The error of a whole page (a failed load): an alert in place of the content.
export function problemBlock(error) {
  const problem = (error && error.problem) || {};
  return el(
    "div",
    { class: "form-alert", role: "alert" },
    el("p", {}, problem.title || "Error", error && error.status ? ` (${error.status})` : ""),
    problem.detail ? el("p", {}, problem.detail) : null,
  );
}

// A definition list of [term, value] pairs (null pairs left out).
export function facts(pairs) {
  return el("dl", { class: "facts" }, pairs.filter(Boolean).map(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
}

const LOCAL = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

// <time datetime="…" title="… UTC">local text</time>
export function time(iso) {
  if (!iso) return el("span", { class: "muted" }, "—");
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return el("span", {}, String(iso));
  const utc = date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC").replace(/Z$/, " UTC");
  return el("time", { datetime: date.toISOString(), title: utc }, LOCAL.format(date));
}

// columns: [{label, cell(row) -> node|string, class?}]; a caption for screen readers.
export function table(columns, rows, { caption, empty = "Nothing here yet." } = {}) {
  if (!rows.length) return el("p", { class: "empty" }, empty);
  return el(
    "div",
    { class: "table-wrap cards" },
    el(
      "table",
      {},
      caption ? el("caption", {}, caption) : null,
      el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col", class: c.class }, c.label)))),
      el(
        "tbody",
        {},
        rows.map((row) =>
          el(
            "tr",
            {},
            columns.map((c, i) => {
              const content = c.cell(row);
              return i === 0 ? el("th", { scope: "row", class: c.class }, content) : el("td", { class: c.class, dataset: { label: c.label } }, content);
            }),
          ),
        ),
      ),
    ),
  );
}

// "Next page" when the API said there is one: onNext(link) loads it.
export function pager(nextLink, onNext, { onFirst } = {}) {
  return el(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    onFirst ? el("button", { type: "button", class: "secondary", onclick: onFirst }, "First page") : null,
    nextLink ? el("button", { type: "button", onclick: () => onNext(nextLink) }, "Next page") : null,
  );
}

// A modal question in a <dialog> (focus stays inside): resolves true for `yes`.
export function confirm(message, { yes = "Confirm", no = "Cancel", danger = false } = {}) {
  return new Promise((resolve) => {
    const dialog = el(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-text" },
      el(
        "form",
        { method: "dialog" },
        el("p", { id: "confirm-text" }, message),
        el(
          "div",
          { class: "actions" },
          el("button", { value: "no", class: "secondary", autofocus: true }, no),
          el("button", { value: "yes", class: danger ? "danger" : "" }, yes),
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "yes");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// A modal showing something (a secret): resolves when closed.
export function showDialog(title, ...content) {
  return new Promise((resolve) => {
    const dialog = el(
      "dialog",
      { "aria-label": title },
      el("form", { method: "dialog" }, el("h2", {}, title), content, el("div", { class: "actions" }, el("button", { value: "close", autofocus: true }, "Close"))),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// A short message in the page's live region.
export function notice(text, { kind = "info" } = {}) {
  let region = document.getElementById("notices");
  if (!region) {
    region = el("div", { id: "notices", class: "notices", role: "status", "aria-live": "polite" });
    document.body.append(region);
  }
  const item = el("p", { class: `notice ${kind}` }, text, " ", el("button", { type: "button", class: "link", onclick: () => item.remove() }, "Dismiss"));
  region.append(item);
  setTimeout(() => item.remove(), 8000);
  return item;
}

// A button that runs an async action once at a time (disabled while it runs).
export function action(label, run, attrs = {}) {
  const button = el("button", { type: "button", ...attrs }, label);
  button.addEventListener("click", async () => {
    if (button.disabled) return;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try {
      await run(button);
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  });
  return button;
}
