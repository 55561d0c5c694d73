// The console's shell: the route table (hash routes), the navigation, the signed-in user.
import { api, ApiError, endSession, token } from "./api.js";
import { clear, el, problemBlock, put } from "./ui.js";

// [pattern, () => import(page module), keys, options]: captures become params named by `keys`,
// the query string joins them; "new" routes have no `id` (the page module creates).
const ROUTES = [
  [/^\/signin$/, () => import("./pages/signin.js"), [], { public: true }],
  [/^\/subscriptions$/, () => import("./pages/subscriptions.js"), []],
  [/^\/subscriptions\/new$/, () => import("./pages/subscription_form.js"), []],
  [/^\/subscriptions\/([^/]+)\/edit$/, () => import("./pages/subscription_form.js"), ["id"]],
  [/^\/subscriptions\/([^/]+)\/deliveries\/([^/]+)$/, () => import("./pages/delivery.js"), ["id", "deliveryId"]],
  [/^\/subscriptions\/([^/]+)$/, () => import("./pages/subscription.js"), ["id"]],
  [/^\/events$/, () => import("./pages/events.js"), []],
  [/^\/events\/new$/, () => import("./pages/event.js"), []],
  [/^\/events\/([^/]+)$/, () => import("./pages/event.js"), ["id"]],
  [/^\/review$/, () => import("./pages/review.js"), []],
  [/^\/locations$/, () => import("./pages/locations.js"), []],
  [/^\/locations\/new$/, () => import("./pages/location.js"), []],
  [/^\/locations\/([^/]+)$/, () => import("./pages/location.js"), ["id"]],
  [/^\/users$/, () => import("./pages/users.js"), []],
];
const HOME = "#/subscriptions";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
let me = null;
let rendering = 0;

function navigate(hash) {
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

function parse(hash) {
  const raw = hash.replace(/^#/, "") || "/";
  const [path, search = ""] = raw.split("?", 2);
  const query = Object.fromEntries(new URLSearchParams(search));
  for (const [pattern, load, keys, options = {}] of ROUTES) {
    const match = path.match(pattern);
    if (!match) continue;
    const params = { ...query };
    keys.forEach((key, i) => {
      params[key] = decodeURIComponent(match[i + 1]);
    });
    return { path, load, params, public: Boolean(options.public) };
  }
  return null;
}

const has = (role) => Boolean(me && me.roles && me.roles.includes(role));

function link(href, label, path) {
  const current = path === href.slice(1) || path.startsWith(`${href.slice(1)}/`);
  return el("a", { href, "aria-current": current ? "page" : null }, label);
}

function drawNav(path) {
  clear(nav);
  if (!me) return;
  nav.append(
    el(
      "ul",
      {},
      el("li", {}, link("#/subscriptions", "Subscriptions", path)),
      el("li", {}, link("#/events", "Events", path)),
      has("approver") || has("admin") ? el("li", {}, link("#/review", "To review", path)) : null,
      el("li", {}, link("#/locations", "Locations", path)),
      has("admin") ? el("li", {}, link("#/users", "Users", path)) : null,
    ),
    el(
      "div",
      { class: "who" },
      el("span", { class: "email", title: (me.roles || []).join(", ") }, me.email),
      el("button", { type: "button", class: "secondary", onclick: () => endSession("You have signed out.") }, "Sign out"),
    ),
  );
}

async function loadMe() {
  if (me || !token()) return me;
  const { data } = await api("GET", "/v2/user/me");
  me = data;
  return me;
}

async function route() {
  const hash = window.location.hash;
  if (hash && !hash.startsWith("#/")) return; // an in-page anchor, not a route
  const ticket = ++rendering;
  if (!token()) me = null;
  let found = parse(hash || HOME);
  if (!found) {
    found = null;
  } else if (!found.public && !token()) {
    navigate("#/signin");
    return;
  } else if (found.path === "/signin" && token()) {
    navigate(HOME);
    return;
  }
  try {
    if (found && !found.public) await loadMe();
  } catch (error) {
    if (ticket !== rendering) return;
    if (error instanceof ApiError && error.status === 401) return; // api.js went to sign-in
    put(clear(main), el("h1", {}, "Herald"), problemBlock(error));
    return;
  }
  if (ticket !== rendering) return;
  drawNav(found ? found.path : "");
  const root = clear(main);
  root.removeAttribute("aria-busy");
  if (!found) {
    put(root, el("h1", {}, "Not found"), el("p", {}, "No page has this address. ", el("a", { href: HOME }, "Go to Subscriptions")));
    return;
  }
  let module;
  try {
    module = await found.load();
  } catch (error) {
    if (ticket !== rendering) return;
    put(root, el("h1", {}, "This page is not available"), el("p", {}, "Its code could not be loaded. Try again later."));
    console.warn("page module failed to load", error);
    return;
  }
  if (ticket !== rendering) return;
  root.setAttribute("aria-busy", "true");
  try {
    await module.render(root, found.params, { me, navigate, stale: () => ticket !== rendering });
  } catch (error) {
    if (ticket !== rendering) return;
    if (error instanceof ApiError && error.status === 401) return;
    put(clear(root), el("h1", {}, "Something went wrong"), problemBlock(error instanceof ApiError ? error : new ApiError(0, { title: "Error", detail: String(error && error.message) })));
  } finally {
    if (ticket === rendering) root.removeAttribute("aria-busy");
  }
  if (ticket === rendering) {
    const heading = root.querySelector("h1");
    document.title = heading ? `${heading.textContent} · Herald` : "Herald console";
    // The link pressed may be gone with the old page: the keyboard goes on from the new one.
    if (!document.activeElement || document.activeElement === document.body) root.focus({ preventScroll: true });
  }
}

window.addEventListener("hashchange", route);
document.querySelector(".skip")?.addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
route();
