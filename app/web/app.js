// DreamTree's web client: starts (or resumes) the reader's workbook, then routes between views.
// Paths are real paths (/workbook/1.1.1.v1, /tools/flow-tracker): the server answers the page
// for each of them (app/http/pages.py CLIENT_PATHS), so links from Daily Dos and reloads work.

import { ApiError, onSessionLost, post, request } from "./api.js";
import { clear, h } from "./dom.js";
import { homeView } from "./views/home.js";
import { exerciseView, outlineView } from "./views/workbook.js";
import { toolsView, toolView } from "./views/tools.js";
import { competenciesView } from "./views/competencies.js";
import { applySettings, settingsView } from "./views/settings.js";
import { accountView } from "./views/account.js";
import { dataView } from "./views/data.js";
import { creditsView } from "./views/credits.js";

const ROUTES = [
  [/^\/$/, "home", homeView],
  [/^\/workbook$/, "workbook", outlineView],
  [/^\/workbook\/([^/]+)$/, "workbook", exerciseView],
  [/^\/tools$/, "tools", toolsView],
  [/^\/tools\/([^/]+)$/, "tools", toolView],
  [/^\/competencies$/, "competencies", competenciesView],
  [/^\/settings$/, "settings", settingsView],
  [/^\/account$/, "account", accountView],
  [/^\/data$/, "data", dataView],
  [/^\/credits$/, "credits", creditsView],
];

const main = document.getElementById("main");
const flashBox = document.getElementById("flash");
let rendering = 0;
let pendingFlash = null;
let renderedPath = null;

/** What every view may use: the reader, navigation and messages. */
export const app = {
  me: null,
  isNew: false,
  navigate(path, flash) {
    if (flash) pendingFlash = flash;
    history.pushState({}, "", path);
    render({ focus: true });
  },
  setMe(me) {
    app.me = me;
    applySettings(me.settings);
    updateAccountLink();
  },
  flash(message) {
    showFlash(message);
  },
  async restart(flash) {
    // After signing out (or losing the session) a fresh anonymous workbook starts here.
    app.setMe(await post("/api/session"));
    app.navigate("/", flash);
  },
};

function showFlash(message) {
  clear(flashBox);
  if (!message) return;
  const parts = Array.isArray(message) ? message : [message];
  flashBox.append(h("div", { class: "flash-inner" }, parts.map((p) => (p instanceof Node ? p : h("p", {}, p))),
    h("button", { type: "button", class: "link-button", onclick: () => clear(flashBox) }, "Dismiss")));
}

function updateAccountLink() {
  const link = document.getElementById("account-link");
  link.textContent = app.me && !app.me.is_anonymous ? "Account" : "Save your workbook";
}

function match(path) {
  for (const [pattern, section, view] of ROUTES) {
    const found = pattern.exec(path);
    if (found) return { section, view, params: found.slice(1).map(decodeURIComponent) };
  }
  return null;
}

async function render({ focus = false } = {}) {
  const ticket = ++rendering;
  renderedPath = location.pathname + location.search;
  const route = match(location.pathname.replace(/\/+$/, "") || "/");
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (route && link.dataset.nav === route.section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  showFlash(pendingFlash);
  pendingFlash = null;
  main.setAttribute("aria-busy", "true");
  let content;
  try {
    content = route ? await route.view({ params: route.params, app }) : notFound();
  } catch (error) {
    content = failure(error);
  }
  if (ticket !== rendering) return; // a newer navigation already owns the page
  clear(main).append(content);
  main.removeAttribute("aria-busy");
  const heading = main.querySelector("h1");
  document.title = heading ? `${heading.textContent} · DreamTree` : "DreamTree";
  if (focus) {
    window.scrollTo({ top: 0, left: 0, behavior: "instant" });
    (heading || main).setAttribute("tabindex", "-1");
    (heading || main).focus({ preventScroll: true });
  }
}

function notFound() {
  return h("section", {}, h("h1", {}, "Nothing here"),
    h("p", {}, "This page doesn't exist. "), h("p", {}, h("a", { href: "/" }, "Back to today")));
}

function failure(error, retry = () => render({ focus: true })) {
  const detail = error instanceof ApiError ? error.detail : "Something unexpected happened in the page.";
  if (!(error instanceof ApiError)) console.error(error);
  return h("section", {}, h("h1", {}, "That didn't load"), h("p", { class: "form-error" }, detail),
    h("p", {}, h("button", { type: "button", onclick: retry }, "Try again")));
}

// Same-origin links to a known view are handled here, without reloading the page.
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (!link || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  if (link.target || link.hasAttribute("download")) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !match(url.pathname)) return;
  if (url.pathname === location.pathname && url.hash) return;
  event.preventDefault();
  app.navigate(url.pathname + url.search);
});

// Back and forward re-render; following an in-page link (the skip link) only moves focus.
window.addEventListener("popstate", () => {
  if (location.pathname + location.search !== renderedPath) render({ focus: true });
});

onSessionLost(async () => {
  // The server forgot this device (signed out elsewhere, or the session expired).
  try {
    await app.restart("You were signed out on this device. Sign in from Account to get back to your saved workbook.");
  } catch {
    /* the failing view already shows what went wrong */
  }
});

async function boot() {
  try {
    const response = await request("POST", "/api/session");
    app.isNew = response.status === 201;
    app.setMe(await response.json());
  } catch (error) {
    clear(main).append(failure(error instanceof ApiError ? error : new ApiError(0, null), boot));
    return;
  }
  await render();
}

boot();
