// The deployments list, refreshed every 2 seconds.

import { api, enc, session } from "../api.js";
import { chip, clear, empty, errorBox, fmt, h } from "../dom.js";

export const POLL_MS = 2000;

export async function render(main, _params, ctx) {
  const admin = session.info && session.info.admin && !session.info.local_mode;
  const body = h("div", { "aria-live": "off" });
  const updated = h("span", { class: "muted small", "aria-live": "off" });
  clear(
    main,
    h("div", { class: "row spread" },
      h("div", {}, h("h1", {}, "Deployments"), h("p", { class: "sub" }, admin ? "Every user's deployments (you are an admin)." : "Your deployments.")),
      h("a", { class: "button primary", href: "#/deploy" }, "Deploy a model")),
    body,
    updated,
  );
  await ctx.every(POLL_MS, async () => {
    let rows;
    try {
      rows = await api("GET", "/api/v1/deployments");
    } catch (err) {
      clear(body, errorBox(err));
      return;
    }
    if (!ctx.alive) return;
    updated.textContent = `Updated ${new Date().toLocaleTimeString()} · refreshes every 2 s`;
    if (!rows.length) {
      clear(body, h("div", { class: "panel" }, empty(
        "No deployments yet",
        "Deploy a model folder from this machine or upload one as a zip: it will be served serverless or on dedicated replicas.",
        h("a", { class: "button primary", href: "#/deploy" }, "Deploy your first model"),
      )));
      return;
    }
    clear(body, h("div", { class: "panel table-wrap" }, table(rows, admin)));
  });
}

function table(rows, admin) {
  return h(
    "table",
    { "data-testid": "deployments", class: "cards" },
    h("caption", { class: "muted small", hidden: true }, "Deployments"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Name"),
      admin ? h("th", { scope: "col", class: "hide-narrow" }, "Owner") : null,
      h("th", { scope: "col" }, "Option"),
      h("th", { scope: "col" }, "State"),
      h("th", { scope: "col", class: "num" }, "Replicas"),
      h("th", { scope: "col", class: "num" }, "Req/min"),
      h("th", { scope: "col", class: "num" }, "Errors"),
      h("th", { scope: "col", class: "num" }, "p99"),
      h("th", { scope: "col", class: "hide-narrow" }, h("span", { class: "sr-only" }, "Actions")),
    )),
    h("tbody", {}, rows.map((d) => {
      const s = d.status || {};
      const t = d.traffic || {};
      return h("tr", { "data-name": d.name },
        h("td", { class: "card-title" }, h("a", { href: `#/d/${enc(d.name)}` }, d.name),
          d.spec.model && d.spec.model.path ? h("div", { class: "muted small hide-narrow" }, d.spec.model.loader !== "auto" ? d.spec.model.loader : "") : null),
        admin ? h("td", { class: "hide-narrow" }, d.owner) : null,
        h("td", { "data-label": "Option" }, d.spec.mode),
        h("td", { "data-testid": "state", "data-label": "State" }, chip(s.state || "pending")),
        h("td", { class: "num", "data-testid": "replicas", "data-label": "Replicas ready" }, `${s.ready ?? 0}/${s.desired ?? 0}`),
        h("td", { class: "num", "data-label": "Requests/min" }, fmt.num(t.requests_per_min)),
        h("td", { class: "num", "data-label": "Errors (last min)" }, fmt.num(t.errors, 0)),
        h("td", { class: "num", "data-label": "p99" }, fmt.ms(t.p99_ms)),
        h("td", { class: "hide-narrow" }, h("a", { href: `#/d/${enc(d.name)}/try` }, "Try it")),
      );
    })),
  );
}
