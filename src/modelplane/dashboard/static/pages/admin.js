// Admin: users and quotas, tokens (a new secret is shown once), the node's resources and GPUs.

import { api, enc, session } from "../api.js";
import { clear, copy, empty, errorBox, field, fmt, h, toast } from "../dom.js";

const TABS = [["users", "Users"], ["tokens", "Tokens"], ["node", "Node & GPUs"]];

export async function render(main, [tab = "users"]) {
  if (!session.info.admin) {
    clear(main, h("h1", {}, "Admin"), errorBox({ message: "Only an admin sees this page.", hint: "Your own tokens: modelplane tokens ls" }));
    return;
  }
  const body = h("div");
  clear(main, h("h1", {}, "Admin"),
    h("nav", { class: "tabs", "aria-label": "Admin" }, TABS.map(([k, l]) => h("a", { href: `#/admin/${k}`, "aria-current": k === tab ? "page" : null }, l))),
    body);
  await ({ users, tokens, node }[tab] || users)(body);
}

function quotaText(q) {
  const parts = [];
  if (q.cpu !== undefined) parts.push(`${q.cpu} cores`);
  if (q.memory !== undefined) parts.push(fmt.bytes(q.memory));
  if (q.gpu !== undefined) parts.push(`${q.gpu} GPU`);
  if (q.deployments !== undefined) parts.push(`${q.deployments} deployments`);
  return parts.join(", ") || "unlimited";
}

function quotaInputs(q = {}) {
  const mk = (name, value, attrs) => h("input", { type: name === "memory" ? "text" : "number", name, value: value ?? "", placeholder: "unlimited", ...attrs });
  const inputs = {
    cpu: mk("cpu", q.cpu, { min: 0, step: "any" }),
    memory: mk("memory", q.memory !== undefined ? fmt.bytes(q.memory).replace(" ", "").replace("B", "") : "", { spellcheck: "false" }),
    gpu: mk("gpu", q.gpu, { min: 0, step: 1 }),
    deployments: mk("deployments", q.deployments, { min: 0, step: 1 }),
  };
  const read = () => {
    const out = {};
    for (const [k, el] of Object.entries(inputs)) {
      const v = el.value.trim();
      if (v !== "") out[k] = k === "memory" && !/^\d+$/.test(v) ? v : Number(v);
    }
    return out;
  };
  const el = h("div", { class: "grid2" }, field("CPU cores", inputs.cpu), field("Memory", inputs.memory, "e.g. 8Gi"), field("GPUs", inputs.gpu), field("Deployments", inputs.deployments));
  return { el, read };
}

async function users(body) {
  const status = h("div", { "aria-live": "polite" });
  const table = h("div", { class: "panel table-wrap" });
  const name = h("input", { type: "text", name: "name", required: true, spellcheck: "false", pattern: "[a-z0-9]([-a-z0-9_.]{0,62}[a-z0-9])?" });
  const isAdmin = h("input", { type: "checkbox", name: "admin" });
  const quotas = quotaInputs();
  const form = h("form", {
    class: "panel",
    onsubmit: async (e) => {
      e.preventDefault();
      clear(status);
      try {
        await api("POST", "/api/v1/users", { name: name.value.trim(), admin: isAdmin.checked, quotas: quotas.read() });
        toast(`User ${name.value} added; give them a token under Tokens`);
        form.reset();
        await draw();
      } catch (err) { clear(status, errorBox(err)); }
    },
  }, h("h2", {}, "Add a user"), field("Name", name), h("label", { class: "inline" }, isAdmin, "Admin"),
  h("fieldset", {}, h("legend", {}, "Quotas (empty: unlimited)"), quotas.el),
  h("button", { type: "submit", class: "primary" }, "Add user"));
  const draw = async () => {
    const list = await api("GET", "/api/v1/users");
    clear(table, h("table", { "data-testid": "users" },
      h("thead", {}, h("tr", {}, ["User", "Role", "Quotas", "Holding now", "Deployments", ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, list.map((u) => h("tr", {},
        h("td", {}, u.name), h("td", {}, u.admin ? "admin" : "user"), h("td", {}, quotaText(u.quotas)),
        h("td", {}, `${u.usage.cpu} cores, ${fmt.bytes(u.usage.memory)}, ${u.usage.gpu} GPU`),
        h("td", { class: "num" }, u.deployments),
        h("td", {}, h("div", { class: "row" },
          h("button", { type: "button", onclick: () => editQuotas(u, status, draw) }, "Quotas…"),
          u.name === session.info.user ? null : h("button", { type: "button", class: "danger", onclick: async () => {
            if (!confirm(`Remove user ${u.name} and their tokens?`)) return;
            try { await api("DELETE", `/api/v1/users/${enc(u.name)}`); await draw(); } catch (err) { clear(status, errorBox(err)); }
          } }, "Remove"))))))));
  };
  clear(body, status, table, form);
  await draw();
}

function editQuotas(user, status, redraw) {
  const q = quotaInputs(user.quotas);
  const dialog = h("dialog", { "aria-label": `Quotas of ${user.name}` });
  dialog.append(h("form", {
    method: "dialog",
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        await api("PUT", `/api/v1/users/${enc(user.name)}/quotas`, q.read());
        dialog.close();
        await redraw();
      } catch (err) { dialog.close(); clear(status, errorBox(err)); }
    },
  }, h("h2", {}, `Quotas of ${user.name}`), q.el,
  h("div", { class: "row" }, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"), h("button", { type: "submit", class: "primary" }, "Save"))));
  document.body.append(dialog);
  dialog.addEventListener("close", () => dialog.remove());
  dialog.showModal();
}

async function tokens(body) {
  const status = h("div", { "aria-live": "polite" });
  const secret = h("div", { "aria-live": "polite" });
  const table = h("div", { class: "panel table-wrap" });
  const people = await api("GET", "/api/v1/users");
  const user = h("select", { name: "user" }, people.map((u) => h("option", { value: u.name, selected: u.name === session.info.user }, u.name)));
  const name = h("input", { type: "text", name: "token-name", placeholder: "e.g. laptop", maxlength: 128 });
  const days = h("input", { type: "number", name: "expires", min: 1, step: "any", placeholder: "never" });
  const form = h("form", {
    class: "panel",
    onsubmit: async (e) => {
      e.preventDefault();
      clear(status);
      try {
        const body = { user: user.value, name: name.value.trim() };
        if (days.value) body.expires_in_days = Number(days.value);
        const t = await api("POST", "/api/v1/tokens", body);
        clear(secret, h("div", { class: "panel", role: "alert" },
          h("h3", {}, `Token for ${t.user}${t.name ? ` (${t.name})` : ""}`),
          h("p", {}, "Copy it now: it is shown only this once (only its hash is kept)."),
          h("div", { class: "secret" }, h("code", { "data-testid": "new-token" }, t.token), h("button", { type: "button", onclick: () => copy(t.token) }, "Copy"))));
        form.reset();
        await draw();
      } catch (err) { clear(status, errorBox(err)); }
    },
  }, h("h2", {}, "Create a token"), h("div", { class: "grid3" }, field("User", user), field("Name", name), field("Expires in (days)", days)),
  h("button", { type: "submit", class: "primary" }, "Create token"));
  const draw = async () => {
    const list = await api("GET", "/api/v1/tokens");
    if (!list.length) return clear(table, empty("No live tokens", "Create one below."));
    clear(table, h("table", { "data-testid": "tokens" },
      h("thead", {}, h("tr", {}, ["Id", "User", "Name", "Scope", "Created", "Expires", ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, list.map((t) => h("tr", { "data-id": t.id },
        h("td", {}, t.id), h("td", {}, t.user), h("td", {}, t.name || "—"),
        h("td", {}, t.deployment ? `predictions with ${t.deployment}` : "the whole API"),
        h("td", {}, fmt.when(t.created_at)), h("td", {}, t.expires_at ? fmt.when(t.expires_at) : "never"),
        h("td", {}, h("button", { type: "button", class: "danger", onclick: async () => {
          if (!confirm(`Revoke token ${t.id} of ${t.user}? It is refused from the next request on.`)) return;
          try { await api("DELETE", `/api/v1/tokens/${t.id}`); toast(`Token ${t.id} revoked`); await draw(); } catch (err) { clear(status, errorBox(err)); }
        } }, "Revoke")))))));
  };
  clear(body, secret, status, table, form);
  await draw();
}

async function node(body) {
  const r = await api("GET", "/api/v1/resources");
  const inv = r.inventory;
  const gpuHolders = {};
  for (const [dep, info] of Object.entries(r.deployments || {})) {
    for (const [replica, res] of Object.entries({ ...(info.replicas || {}), ...(info.trainings || {}) })) {
      for (const g of res.gpu_devices || []) gpuHolders[g] = { dep, replica, owner: info.owner };
    }
  }
  const row = (label, total, reserved, free, f = (x) => x) => h("tr", {}, h("th", { scope: "row" }, label), h("td", { class: "num" }, f(total)), h("td", { class: "num" }, f(reserved)), h("td", { class: "num" }, f(free)));
  clear(body,
    h("div", { class: "panel table-wrap" }, h("h2", {}, "This node"),
      h("p", { class: "muted small" }, `${inv.cores} cores probed (${inv.source}); cores are time-shared, memory and GPUs never overcommitted.`),
      h("table", { "data-testid": "node" }, h("thead", {}, h("tr", {}, ["", "Reservable", "Reserved", "Free"].map((c, i) => h("th", { scope: "col", class: i ? "num" : null }, c)))),
        h("tbody", {}, row("CPU cores", inv.cpu, r.reserved.cpu, r.free.cpu, (x) => fmt.num(x)), row("Memory", inv.memory, r.reserved.memory, r.free.memory, fmt.bytes), row("GPUs", inv.gpus.length, r.reserved.gpu, r.free.gpu)))),
    h("div", { class: "panel table-wrap" }, h("h2", {}, "GPUs"),
      inv.gpus.length
        ? h("table", {}, h("thead", {}, h("tr", {}, ["Device", "Held by", "Replica", "Owner"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, inv.gpus.map((g) => {
            const dev = typeof g === "object" ? g.index ?? g.id : g;
            const who = gpuHolders[dev];
            return h("tr", {}, h("td", {}, typeof g === "object" ? `${dev} ${g.name || ""}` : `GPU ${dev}`), h("td", {}, who ? h("a", { href: `#/d/${enc(who.dep)}` }, who.dep) : "free"), h("td", {}, who ? who.replica : "—"), h("td", {}, who ? who.owner : "—"));
          })))
        : empty("No GPUs on this node", "Start the platform with --gpus N to declare them, or on a machine where nvidia-smi finds some.")),
    h("div", { class: "panel table-wrap" }, h("h2", {}, "What each deployment holds"),
      Object.keys(r.deployments || {}).length
        ? h("table", {}, h("thead", {}, h("tr", {}, ["Deployment", "Owner", "Replica", "CPU", "Memory", "GPUs"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, Object.entries(r.deployments).flatMap(([dep, info]) => Object.entries(info.replicas).map(([rep, res]) => h("tr", {},
            h("td", {}, h("a", { href: `#/d/${enc(dep)}` }, dep)), h("td", {}, info.owner), h("td", {}, h("code", {}, rep)),
            h("td", { class: "num" }, res.cpu), h("td", { class: "num" }, fmt.bytes(res.memory)), h("td", {}, (res.gpu_devices || []).join(", ") || "—"))))))
        : empty("Nothing reserved", "No replica holds resources right now.")));
}
