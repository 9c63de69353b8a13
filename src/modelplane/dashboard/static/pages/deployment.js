// One deployment: charts and replicas, live logs, events, settings (scale, spec, export, delete).

import { api, enc, hasOperation, raw } from "../api.js";
import { timeChart } from "../chart.js";
import { chip, clear, download, empty, errorBox, field, fmt, h, toast } from "../dom.js";
import { toYaml } from "../yaml.js";

const TABS = [["overview", "Overview"], ["logs", "Logs"], ["events", "Events"], ["settings", "Settings"]];
const EXPORT_TARGETS = ["image", "compose", "kubernetes", "knative", "kserve", "nomad", "oscar"];

export async function render(main, [name, tab = "overview"], ctx) {
  const d = await api("GET", `/api/v1/deployments/${enc(name)}`);
  document.title = `${name} · modelplane`;
  const head = h("div");
  const body = h("div");
  const renderHead = (dep) => {
    const s = dep.status;
    clear(head,
      h("div", { class: "row spread" },
        h("div", {},
          h("h1", {}, dep.name, " ", h("span", { "data-testid": "state" }, chip(s.state))),
          h("p", { class: "sub" }, `${dep.spec.mode} · ${s.ready}/${s.desired} replicas ready · owner ${dep.owner} · generation ${dep.generation}`)),
        h("a", { class: "button primary", href: `#/d/${enc(name)}/try` }, "Try it")),
      s.last_error ? errorBox({ message: `Last error: ${s.last_error}` }) : null,
      s.pending ? h("p", { class: "error" }, `Waiting: ${s.pending}`) : null,
      s.autoscaler && s.autoscaler.reason ? h("p", { class: "muted small" }, `Autoscaler: ${s.autoscaler.reason}`) : null);
  };
  renderHead(d);
  const tabs = h("nav", { class: "tabs", "aria-label": "Deployment" },
    TABS.map(([key, label]) => h("a", { href: `#/d/${enc(name)}/${key}`, "aria-current": key === tab ? "page" : null }, label)));
  clear(main, h("p", {}, h("a", { href: "#/" }, "← Deployments")), head, tabs, body);
  const pages = { overview, logs, events, settings };
  await (pages[tab] || overview)(body, d, ctx, renderHead);
}

async function overview(body, d, ctx, renderHead) {
  const charts = h("div", { class: "grid2" });
  const replicas = h("div", { class: "panel table-wrap" });
  const details = h("div", { class: "panel" });
  clear(body, charts, h("h2", {}, "Replicas"), replicas, h("h2", {}, "Spec"), details);
  clear(details, h("pre", {}, toYaml(d.spec)));
  let points = []; // kept here; each poll asks only for the points after the last one
  await ctx.every(2000, async () => {
    const since = points.length ? `?since=${points.at(-1).at}` : "";
    const [dep, m] = await Promise.all([
      api("GET", `/api/v1/deployments/${enc(d.name)}`),
      api("GET", `/api/v1/deployments/${enc(d.name)}/metrics${since}`),
    ]);
    if (!ctx.alive) return;
    points = points.concat(m.points).slice(-900);
    renderHead(dep);
    drawCharts(charts, { ...m, points });
    drawReplicas(replicas, dep.status);
  });
}

function drawCharts(box, m) {
  const p = m.points;
  const at = (key) => p.map((x) => [x.at, x[key]]);
  const colds = (m.cold_starts || []).map((c) => [Date.parse(c.at || c.started_at) / 1000, c.seconds ?? c.duration ?? null]);
  clear(box,
    timeChart([{ name: "ready", points: at("ready") }, { name: "desired", points: at("desired") }, { name: "starting", points: at("starting") }], { title: "Replicas", unit: "replicas", step: true, window: 900 }),
    timeChart([{ name: "requests/min", points: at("requests_per_min") }, { name: "5xx errors", points: at("errors") }], { title: "Requests", unit: "per minute; errors per interval", window: 900 }),
    timeChart([{ name: "p50", points: at("p50_ms") }, { name: "p99", points: at("p99_ms") }], { title: "Latency", unit: "ms", window: 900 }),
    timeChart([{ name: "cold start", points: colds, dots: true }], { title: "Cold starts", unit: "seconds to ready", window: 900 }),
  );
  if (!p.length) box.prepend(h("p", { class: "muted small" }, "Charts fill in as the platform samples the traffic (every few seconds)."));
}

function drawReplicas(box, s) {
  if (!s.replicas.length) {
    clear(box, empty("No replicas right now", s.desired === 0 ? "A serverless deployment at zero starts one with the first request." : "Replicas are being started."));
    return;
  }
  clear(box, h("table", { "data-testid": "replicas" },
    h("thead", {}, h("tr", {}, ["Replica", "State", "Node / pid", "Memory", "Load time", "Served", "In flight", "Started"].map((c, i) =>
      h("th", { scope: "col", class: i >= 3 && i <= 6 ? "num" : null }, c)))),
    h("tbody", {}, s.replicas.map((r) => h("tr", {},
      h("td", {}, h("code", {}, r.id)),
      h("td", {}, chip(r.state)),
      h("td", {}, `${r.node || "local"} / ${r.pid ?? "—"}`),
      h("td", { class: "num" }, fmt.bytes(r.memory_bytes)),
      h("td", { class: "num" }, r.load_seconds === null || r.load_seconds === undefined ? "—" : `${r.load_seconds.toFixed(2)} s`),
      h("td", { class: "num" }, r.served),
      h("td", { class: "num" }, r.in_flight),
      h("td", {}, fmt.time(r.started_at)))))),
  h("p", { class: "muted small" }, `Restarts: ${s.restarts} · requests: ${s.requests ?? 0} · queued now: ${s.queued ?? 0}`));
}

async function logs(body, d, ctx) {
  const pre = h("pre", { class: "logs", tabindex: 0, "aria-label": `Logs of ${d.name}`, "data-testid": "logs" });
  const follow = h("input", { type: "checkbox", checked: true });
  const filter = h("input", { type: "search", placeholder: "filter lines", "aria-label": "Filter log lines" });
  clear(body, h("div", { class: "panel" },
    h("div", { class: "row spread" }, h("h2", {}, "Live logs"), h("label", { class: "inline" }, follow, "Follow")),
    filter, pre, h("p", { class: "muted small" }, "The model's own stdout/stderr and the platform's notes; refreshed every 2 s.")));
  let lines = [];
  const draw = () => {
    const q = filter.value.toLowerCase();
    const shown = q ? lines.filter((l) => l.toLowerCase().includes(q)) : lines;
    pre.textContent = shown.join("\n") || "(no output yet)";
    if (follow.checked) pre.scrollTop = pre.scrollHeight;
  };
  filter.addEventListener("input", draw);
  await ctx.every(2000, async () => {
    lines = (await api("GET", `/api/v1/deployments/${enc(d.name)}/logs?tail=500`)).lines;
    draw();
  });
}

async function events(body, d, ctx) {
  const box = h("div", { class: "panel table-wrap" });
  clear(body, box);
  await ctx.every(2000, async () => {
    const dep = await api("GET", `/api/v1/deployments/${enc(d.name)}`);
    const rows = (dep.events || []).slice().reverse();
    if (!rows.length) { clear(box, empty("No events yet", "Replica starts, exits and errors appear here.")); return; }
    clear(box, h("table", {}, h("thead", {}, h("tr", {}, ["When", "Kind", "Replica", "Message"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((e) => h("tr", {}, h("td", {}, fmt.when(e.at)), h("td", {}, e.kind), h("td", {}, e.replica || "—"), h("td", {}, e.message))))));
  });
}

async function settings(body, d) {
  const spec = d.spec;
  const status = h("div", { "aria-live": "polite" });
  const save = async (next) => {
    clear(status);
    try {
      await api("PUT", `/api/v1/deployments/${enc(d.name)}`, next);
      toast("Saved: replicas roll over to the new spec");
      location.hash = `#/d/${enc(d.name)}/overview`;
    } catch (err) {
      clear(status, errorBox(err));
    }
  };
  const scaleForm = (() => {
    const inputs = {};
    const keys = spec.mode === "serverless" ? ["min", "max", "target_concurrency", "idle_timeout"] : ["replicas"];
    const labels = { min: "Replicas at rest (min)", max: "Most replicas (max)", target_concurrency: "Requests in flight per replica", idle_timeout: "Idle timeout (s)", replicas: "Replicas" };
    for (const k of keys) inputs[k] = h("input", { type: "number", name: k, value: spec.scale[k], step: "any", min: k === "min" ? 0 : 1 });
    return h("form", {
      class: "panel",
      onsubmit: (e) => {
        e.preventDefault();
        const scale = { ...spec.scale };
        for (const k of keys) scale[k] = Number(inputs[k].value);
        save({ ...spec, scale });
      },
    }, h("h2", {}, "Scale"), h("div", { class: "grid2" }, keys.map((k) => field(labels[k], inputs[k]))),
    h("button", { type: "submit", class: "primary" }, "Save scale"));
  })();
  const text = h("textarea", { rows: 14, name: "spec", spellcheck: "false" });
  text.value = JSON.stringify(spec, null, 2);
  const specForm = h("form", {
    class: "panel",
    onsubmit: (e) => {
      e.preventDefault();
      let next;
      try { next = JSON.parse(text.value); } catch (err) { clear(status, errorBox({ message: `The spec is not valid JSON: ${err.message}` })); return; }
      save(next);
    },
  }, h("h2", {}, "Spec"), field("The whole spec (JSON)", text, "Unknown fields and impossible values are refused with the field named."),
  h("button", { type: "submit", class: "primary" }, "Save spec"));

  const exportBox = h("div");
  if (await hasOperation("GET", "/api/v1/deployments/{name}/export")) {
    let targets = EXPORT_TARGETS.map((t) => ({ name: t, summary: "" }));
    try { targets = await api("GET", "/api/v1/export/targets"); } catch { /* the built-in list */ }
    const target = h("select", { name: "target" }, targets.map((t) => h("option", { value: t.name }, t.summary ? `${t.name} — ${t.summary}` : t.name)));
    clear(exportBox, h("form", {
      class: "panel",
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const res = await raw("GET", `/api/v1/deployments/${enc(d.name)}/export?target=${enc(target.value)}`);
          const disposition = res.headers.get("content-disposition") || "";
          const m = disposition.match(/filename="?([^";]+)"?/);
          download(await res.blob(), m ? m[1] : `${d.name}-${target.value}.${(res.headers.get("content-type") || "").includes("json") ? "json" : "zip"}`);
        } catch (err) { clear(status, errorBox(err)); }
      },
    }, h("h2", {}, "Export"), h("p", { class: "muted" }, "Download manifests to run this deployment on your own cloud."),
    field("Target", target), h("button", { type: "submit" }, "Download")));
  }

  const dialog = h("dialog", { "aria-labelledby": "del-title" });
  const confirmInput = h("input", { type: "text", name: "confirm", autocomplete: "off", spellcheck: "false" });
  clear(dialog, h("form", {
    method: "dialog",
    onsubmit: async (e) => {
      e.preventDefault();
      if (confirmInput.value !== d.name) { confirmInput.setCustomValidity(`Type ${d.name} to confirm`); confirmInput.reportValidity(); return; }
      try {
        await api("DELETE", `/api/v1/deployments/${enc(d.name)}`);
        dialog.close();
        toast(`${d.name} deleted`);
        location.hash = "#/";
      } catch (err) { dialog.close(); clear(status, errorBox(err)); }
    },
  }, h("h2", { id: "del-title" }, `Delete ${d.name}?`),
  h("p", {}, "Its replicas stop, its jobs and inference tokens go. This cannot be undone."),
  field(`Type ${d.name} to confirm`, confirmInput),
  h("div", { class: "row" }, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"), h("button", { type: "submit", class: "danger primary" }, "Delete"))));
  confirmInput.addEventListener("input", () => confirmInput.setCustomValidity(""));

  clear(body, status, h("div", { class: "grid2" }, scaleForm, specForm), exportBox,
    h("div", { class: "panel" }, h("h2", {}, "Delete"), h("p", { class: "muted" }, "Remove the deployment and stop its replicas."),
      h("button", { type: "button", class: "danger", onclick: () => dialog.showModal() }, "Delete deployment…")),
    dialog);
}
