// The dashboard's shell: sign-in, navigation, and a hash router (#/path) over page modules.
// Each page is `render(main, params, ctx)`; ctx.every(ms, fn) polls until the page is left.

import { api, ApiError, session } from "./api.js";
import { clear, empty, errorBox, h } from "./dom.js";
import * as admin from "./pages/admin.js";
import * as deployment from "./pages/deployment.js";
import * as deployments from "./pages/deployments.js";
import * as jobs from "./pages/jobs.js";
import * as signin from "./pages/signin.js";
import * as tryit from "./pages/try.js";
import * as wizard from "./pages/wizard.js";

const routes = [
  [/^\/$/, deployments, "deployments"],
  [/^\/deploy$/, wizard, "deploy"],
  [/^\/d\/([a-z0-9-]+)\/try$/, tryit, "deployments"],
  [/^\/d\/([a-z0-9-]+)(?:\/(\w+))?$/, deployment, "deployments"],
  [/^\/jobs(?:\/([a-z0-9-]+))?$/, jobs, "jobs"],
  [/^\/admin(?:\/(\w+))?$/, admin, "admin"],
];

const main = document.getElementById("main");
let current = null; // the page's context: timers to stop when it is left

function context() {
  const timers = [];
  let alive = true;
  return {
    get alive() { return alive; },
    every(ms, fn) {
      let busy = false;
      const tick = async () => {
        if (!alive || busy || document.hidden) return;
        busy = true;
        try { await fn(); } finally { busy = false; }
      };
      timers.push(setInterval(tick, ms));
      return tick();
    },
    leave() { alive = false; timers.forEach(clearInterval); },
  };
}

async function whoami() {
  session.info = null; // so a 401 here is an answer, not a sign-out
  try {
    session.info = await api("GET", "/api/v1/info");
  } catch (err) {
    session.info = null;
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
  }
  return session.info;
}

function renderWho() {
  const who = document.getElementById("who");
  const info = session.info;
  document.querySelector('[data-nav="admin"]').hidden = !(info && info.admin);
  if (!info) return clear(who);
  if (info.local_mode) return clear(who, h("span", { class: "chip" }, "local mode"));
  clear(
    who,
    h("span", {}, "Signed in as ", h("strong", {}, info.user), info.admin ? " (admin)" : ""),
    h("button", { type: "button", onclick: signOut }, "Sign out"),
  );
}

let pendingNotice = null; // shown by the sign-in page the next route() renders

function toSignIn(notice) {
  pendingNotice = notice;
  if (location.hash !== "#/signin") location.hash = "#/signin"; // hashchange routes
  else route();
}

export function signOut() {
  session.token = null;
  session.info = null;
  renderWho();
  toSignIn(null);
}

session.onUnauthorized = (err) => {
  if (!session.info || session.info.local_mode) return; // not signed in (yet): nothing to undo
  session.token = null;
  session.info = null;
  renderWho();
  const why = err.message || "Your token was refused";
  toSignIn(`${why}. Sign in again with a valid token.`);
};

async function route() {
  const notice = pendingNotice;
  pendingNotice = null;
  if (current) current.leave();
  current = context();
  const path = (location.hash.replace(/^#/, "") || "/").split("?")[0];
  document.querySelectorAll("nav a").forEach((a) => a.removeAttribute("aria-current"));
  document.getElementById("nav").classList.remove("open");
  if (!session.info) {
    try {
      await whoami();
    } catch (err) {
      clear(main, errorBox(err));
      return;
    }
    renderWho();
  }
  if (!session.info || path === "/signin") {
    if (session.info && path === "/signin") { location.hash = "#/"; return; }
    document.title = "Sign in · modelplane";
    signin.render(main, notice, async (token) => {
      session.token = token;
      const info = await whoami();
      if (!info) { session.token = null; throw new ApiError(401, { message: "That token was refused" }); }
      renderWho();
      if (path === "/signin") location.hash = "#/"; // hashchange routes
      else route(); // the page that was asked for
    });
    return;
  }
  for (const [pattern, page, nav] of routes) {
    const m = path.match(pattern);
    if (!m) continue;
    const link = document.querySelector(`[data-nav="${nav}"]`);
    if (link) link.setAttribute("aria-current", "page");
    clear(main, h("p", { class: "muted", "aria-busy": "true" }, "Loading…"));
    try {
      await page.render(main, m.slice(1), current);
    } catch (err) {
      if (current.alive) clear(main, errorBox(err));
    }
    main.focus({ preventScroll: true });
    return;
  }
  clear(main, empty("Page not found", `There is no page at ${path}.`, h("a", { href: "#/" }, "Back to the deployments")));
}

document.querySelector(".menu-toggle").addEventListener("click", (e) => {
  const nav = document.getElementById("nav");
  const open = nav.classList.toggle("open");
  e.currentTarget.setAttribute("aria-expanded", String(open));
});
window.addEventListener("hashchange", () => route());
route();
