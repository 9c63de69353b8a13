// The deploy wizard: model → option → resources and scale → review (spec YAML) → progress.

import { api, enc, hasOperation, upload } from "../api.js";
import { chip, clear, errorBox, field, fmt, h, id } from "../dom.js";
import { toYaml } from "../yaml.js";

const STEPS = ["Model", "Option", "Resources & scale", "Review", "Progress"];

export const OPTIONS = {
  serverless: {
    title: "Serverless",
    summary: "Loaded on demand: replicas scale from zero up to a maximum with the load, and back to zero when idle.",
    pros: [
      "Nothing in memory while nobody calls it",
      "Grows with bursts of many concurrent requests, up to the maximum",
      "Good for rare, spiky or spaced-out traffic",
    ],
    cons: [
      "The first request after an idle period waits for a cold start (the model's load time)",
      "Latency varies while replicas are being added",
    ],
  },
  dedicated: {
    title: "Dedicated",
    summary: "Always loaded in a fixed number of replicas.",
    pros: [
      "Lowest and steadiest latency: no cold starts",
      "Good for few concurrent requests, close in time, that need a quick answer",
    ],
    cons: [
      "Holds its CPU, memory (and GPUs) all the time, even when idle",
      "Fixed capacity: does not grow with a burst",
    ],
  },
};

export async function render(main, _params, ctx) {
  const state = {
    step: 0,
    source: "path",
    path: "",
    model: null, // the answer of /models/inspect or /models (upload)
    name: "",
    mode: "serverless",
    resources: { cpu: 1, memory: "1Gi", gpu: 0 },
    scale: { min: 0, max: 4, target_concurrency: 4, idle_timeout: 300, replicas: 1 },
    input: "",
    output: "",
  };
  const advisor = await hasOperation("POST", "/api/v1/advise");
  const stepper = h("ol", { class: "steps", "aria-label": "Steps" });
  const body = h("div");
  clear(main, h("h1", {}, "Deploy a model"), h("p", { class: "sub" }, "Pick a model folder, choose how it is served, review the spec, deploy."), stepper, body);

  const show = () => {
    clear(stepper, STEPS.map((s, i) => h("li", { "aria-current": i === state.step ? "step" : null }, `${i + 1}. ${s}`)));
    const pages = [stepModel, stepOption, stepScale, stepReview];
    if (state.step < pages.length) clear(body, pages[state.step](state, go, advisor));
    const heading = body.querySelector("h2");
    if (heading) { heading.tabIndex = -1; heading.focus(); }
  };
  const go = (step) => {
    state.step = step;
    if (step === 4) return progress(body, state, ctx, stepper);
    show();
  };
  show();
}

function nav(go, back, next, nextLabel = "Next") {
  return h("div", { class: "row" },
    back !== null ? h("button", { type: "button", onclick: () => go(back) }, "Back") : null,
    next ? h("button", { type: "submit", class: "primary" }, nextLabel) : null);
}

function stepModel(state, go) {
  const status = h("div", { "aria-live": "polite" });
  const pathInput = h("input", { type: "text", name: "path", value: state.path, placeholder: "/home/me/models/my-model", spellcheck: "false" });
  const zipInput = h("input", { type: "file", name: "zip", accept: ".zip,application/zip" });
  const bar = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Upload progress" });
  const radios = ["path", "zip"].map((v) => h("label", { class: "inline" },
    h("input", { type: "radio", name: "source", value: v, checked: state.source === v, onchange: () => { state.source = v; sync(); } }),
    v === "path" ? "A folder on the platform's machine" : "Upload a model folder as a zip"));
  const pathBox = field("Model folder", pathInput, "The folder with modelplane.yaml (or a DEEPaaS module, or an OSCAR script), as a path on the machine running the platform.");
  const zipBox = field("Zip archive", zipInput, "Zip the model folder (zip -r model.zip my-model/) and pick the file.");
  const sync = () => { pathBox.hidden = state.source !== "path"; zipBox.hidden = state.source !== "zip"; };
  sync();
  const found = state.model ? summary(state.model) : null;
  const form = h("form", {
    class: "panel",
    onsubmit: async (e) => {
      e.preventDefault();
      clear(status);
      const button = form.querySelector("[type=submit]");
      button.disabled = true;
      try {
        if (state.source === "path") {
          state.path = pathInput.value.trim();
          if (!state.path) throw new Error("Type the path of a model folder");
          state.model = await api("POST", "/api/v1/models/inspect", { path: state.path });
        } else {
          const file = zipInput.files[0];
          if (!file) throw new Error("Choose a zip file");
          bar.hidden = false;
          state.model = await upload("POST", "/api/v1/models", file, "application/zip", (f) => { bar.value = f; });
          state.path = state.model.path;
        }
        state.name = state.name || state.model.suggested_name;
        go(1);
      } catch (err) {
        clear(status, errorBox(err));
      } finally {
        button.disabled = false;
      }
    },
  },
  h("h2", {}, "Which model?"),
  h("fieldset", {}, h("legend", {}, "Where is it"), radios),
  pathBox, zipBox, bar, found, status,
  nav(go, null, true, "Check the model"));
  return form;
}

function summary(model) {
  const m = model.metadata || {};
  return h("dl", { class: "kv panel" },
    h("dt", {}, "Folder"), h("dd", {}, h("code", {}, model.path)),
    h("dt", {}, "Format"), h("dd", {}, model.loader),
    m.name ? [h("dt", {}, "Model"), h("dd", {}, `${m.name} ${m.version ? `v${m.version}` : ""}`)] : null,
    m.description ? [h("dt", {}, "About"), h("dd", {}, m.description)] : null,
    m.accepts ? [h("dt", {}, "Accepts"), h("dd", {}, m.accepts.join(", "))] : null);
}

function stepOption(state, go, advisor) {
  const cards = Object.entries(OPTIONS).map(([key, o]) => h("label", { class: "option-card" },
    h("h3", {}, h("input", {
      type: "radio", name: "mode", value: key, checked: state.mode === key,
      "aria-labelledby": `opt-${key}`, "aria-describedby": `opt-${key}-about`,
      onchange: () => { state.mode = key; },
    }), h("span", { id: `opt-${key}` }, o.title)),
    h("div", { id: `opt-${key}-about` },
      h("p", { class: "muted" }, o.summary),
      h("div", { class: "small" }, "Pros"), h("ul", { class: "pros" }, o.pros.map((p) => h("li", {}, p))),
      h("div", { class: "small" }, "Cons"), h("ul", { class: "cons" }, o.cons.map((c) => h("li", {}, c))))));
  return h("form", { class: "panel", onsubmit: (e) => { e.preventDefault(); go(2); } },
    h("h2", {}, "How should it be served?"),
    summary(state.model),
    h("fieldset", {}, h("legend", {}, "Option"), h("div", { class: "grid2" }, cards)),
    advisor ? advise(state) : h("p", { class: "muted small" }, "Rule of thumb: serverless for many concurrent requests or requests spaced out in time; dedicated for few concurrent requests, close in time, that need low latency."),
    nav(go, 0, true));
}

function advise(state) {
  const rate = h("input", { type: "number", min: 0.001, step: "any", value: 600, name: "requests_per_hour" });
  const peak = h("input", { type: "number", min: 1, step: 1, value: 4, name: "peak_concurrency" });
  const pattern = h("select", { name: "pattern" }, ["steady", "bursty", "spaced"].map((p) => h("option", { value: p }, p)));
  const slo = h("input", { type: "number", min: 1, step: "any", placeholder: "none", name: "latency_slo_ms" });
  const load = h("input", { type: "number", min: 0, step: "any", value: 1, name: "load_seconds" });
  const service = h("input", { type: "number", min: 0, step: "any", value: 50, name: "service_ms" });
  const out = h("div", { "aria-live": "polite" });
  const ask = async () => {
    clear(out, h("p", { class: "muted", "aria-busy": "true" }, "Simulating a day of that traffic with the platform's own autoscaler (this can take a few seconds)…"));
    const body = {
      costs: { load_seconds: Number(load.value), service_seconds: [Number(service.value) / 1000] },
      requests_per_hour: Number(rate.value),
      peak_concurrency: Number(peak.value),
      pattern: pattern.value,
      model_path: state.path,
    };
    if (state.name) body.name = state.name;
    if (slo.value) body.latency_slo_ms = Number(slo.value);
    try {
      const answer = await api("POST", "/api/v1/advise", body);
      const rec = answer.recommendation || {};
      const chosen = (answer.options || []).find((o) => o.option === rec.option);
      const adopt = (o) => {
        if (o.option !== "serverless" && o.option !== "dedicated") return;
        state.mode = o.option;
        document.querySelectorAll('input[name="mode"]').forEach((r) => { r.checked = r.value === o.option; });
        const scale = o.spec && o.spec.scale;
        if (scale) state.scale = { ...state.scale, ...scale };
      };
      if (chosen) adopt(chosen);
      clear(out, h("div", { class: "recommended", "data-testid": "advice" },
        h("strong", {}, `Recommended: ${rec.option}`, chosen ? h("span", { class: "muted" }, ` (${chosen.title})`) : null),
        rec.reason ? h("p", {}, rec.reason) : null,
        h("div", { class: "table-wrap" }, h("table", {},
          h("thead", {}, h("tr", {}, ["Option", "p50", "p99", "Cold starts", "Replica-h/day", "Meets goal", ""].map((c, i) => h("th", { scope: "col", class: i && i < 5 ? "num" : null }, c)))),
          h("tbody", {}, (answer.options || []).map((o) => h("tr", {},
            h("td", {}, h("strong", {}, o.option), h("div", { class: "small muted" }, o.title), o.refused ? h("div", { class: "small state-failed" }, o.refused) : null),
            h("td", { class: "num" }, fmt.ms(o.p50_ms)), h("td", { class: "num" }, fmt.ms(o.p99_ms)),
            h("td", { class: "num" }, o.cold_start_share === null || o.cold_start_share === undefined ? "—" : `${(o.cold_start_share * 100).toFixed(1)} %`),
            h("td", { class: "num" }, fmt.num(o.replica_hours_per_day)),
            h("td", {}, o.meets_slo === null || o.meets_slo === undefined ? "—" : o.meets_slo ? "yes" : `no (${fmt.ms(o.slo_miss_ms)} over)`),
            h("td", {}, o.option === "serverless" || o.option === "dedicated"
              ? h("button", { type: "button", onclick: () => adopt(o) }, "Use these settings") : null)))))),
        h("p", { class: "muted small" }, `Costs used: ${answer.costs ? `load ${answer.costs.load_seconds} s, ${fmt.ms(answer.costs.service_seconds_p50 * 1000)} per request (${answer.costs.source})` : "given"}.`)));
    } catch (err) {
      clear(out, errorBox(err));
    }
  };
  return h("fieldset", {}, h("legend", {}, "Ask the advisor: it simulates a day of your traffic"),
    h("div", { class: "grid3" }, field("Requests per hour", rate), field("Peak concurrent requests", peak), field("Pattern", pattern)),
    h("div", { class: "grid3" }, field("p99 latency goal (ms)", slo), field("Model load time (s)", load, "the model's load(); `modelplane advise --model` measures it"), field("Time per request (ms)", service)),
    h("button", { type: "button", onclick: ask }, "Recommend"), out);
}

function num(name, value, attrs, label, hint) {
  const input = h("input", { type: "number", name, value, step: "any", ...attrs });
  return [input, field(label, input, hint)];
}

function stepScale(state, go) {
  const [cpu, cpuF] = num("cpu", state.resources.cpu, { min: 0.1, max: 1024 }, "CPU cores per replica");
  const memory = h("input", { type: "text", name: "memory", value: state.resources.memory, pattern: "[0-9.]+\\s*([KMGT]i?)?B?", spellcheck: "false" });
  const [gpu, gpuF] = num("gpu", state.resources.gpu, { min: 0, max: 64, step: 1 }, "GPUs per replica");
  const [min, minF] = num("min", state.scale.min, { min: 0, max: 256, step: 1 }, "Replicas at rest (min)", "0: nothing in memory while idle");
  const [max, maxF] = num("max", state.scale.max, { min: 1, max: 256, step: 1 }, "Most replicas (max)");
  const [tc, tcF] = num("target_concurrency", state.scale.target_concurrency, { min: 0.1 }, "Requests in flight per replica", "what the autoscaler aims for");
  const [idle, idleF] = num("idle_timeout", state.scale.idle_timeout, { min: 1 }, "Idle timeout (seconds)", "back to min after this long without requests");
  const [replicas, replicasF] = num("replicas", state.scale.replicas, { min: 1, max: 256, step: 1 }, "Replicas");
  const name = h("input", { type: "text", name: "name", value: state.name, required: true, pattern: "[a-z]([a-z0-9-]{0,61}[a-z0-9])?", spellcheck: "false" });
  const input = h("input", { type: "text", name: "input", value: state.input, placeholder: "none", spellcheck: "false" });
  const output = h("input", { type: "text", name: "output", value: state.output, placeholder: "none", spellcheck: "false" });
  const serverless = state.mode === "serverless";
  return h("form", {
    class: "panel",
    onsubmit: (e) => {
      e.preventDefault();
      state.name = name.value.trim();
      state.resources = { cpu: Number(cpu.value), memory: memory.value.trim(), gpu: Number(gpu.value) };
      state.scale = serverless
        ? { ...state.scale, min: Number(min.value), max: Number(max.value), target_concurrency: Number(tc.value), idle_timeout: Number(idle.value) }
        : { ...state.scale, replicas: Number(replicas.value) };
      state.input = input.value.trim();
      state.output = output.value.trim();
      go(3);
    },
  },
  h("h2", {}, "Resources and scale"),
  field("Deployment name", name, "lowercase letters, digits and '-'; it is part of the prediction URL"),
  h("fieldset", {}, h("legend", {}, "Each replica reserves"), h("div", { class: "grid3" }, cpuF, field("Memory", memory, "e.g. 512Mi, 2Gi"), gpuF)),
  h("fieldset", {}, h("legend", {}, serverless ? "Serverless scale" : "Dedicated replicas"),
    serverless ? h("div", { class: "grid2" }, minF, maxF, tcF, idleF) : replicasF),
  h("fieldset", {}, h("legend", {}, "Asynchronous jobs (optional)"),
    h("p", { class: "muted small" }, "Files uploaded to the input bucket become jobs; results land in the output bucket."),
    h("div", { class: "grid2" }, field("Input bucket", input), field("Output bucket", output))),
  nav(go, 1, true, "Review"));
}

export function specOf(state) {
  const spec = {
    name: state.name,
    model: { path: state.path, loader: state.model && state.model.loader !== "python" ? state.model.loader : "auto" },
    mode: state.mode,
    resources: state.resources,
    scale: state.mode === "serverless"
      ? { min: state.scale.min, max: state.scale.max, target_concurrency: state.scale.target_concurrency, idle_timeout: state.scale.idle_timeout }
      : { replicas: state.scale.replicas },
  };
  if (state.input) spec.input = state.input;
  if (state.output) spec.output = state.output;
  return spec;
}

function stepReview(state, go) {
  const spec = specOf(state);
  const status = h("div", { "aria-live": "polite" });
  return h("form", {
    class: "panel",
    onsubmit: async (e) => {
      e.preventDefault();
      const button = e.currentTarget.querySelector("[type=submit]");
      button.disabled = true;
      clear(status);
      try {
        await api("POST", "/api/v1/deployments", spec);
        go(4);
      } catch (err) {
        clear(status, errorBox(err));
        button.disabled = false;
      }
    },
  },
  h("h2", {}, "Review the spec"),
  h("p", { class: "muted" }, "This is the deployment spec the platform receives; save it as a YAML file to deploy the same with ", h("code", {}, "modelplane deploy spec.yaml"), "."),
  h("pre", { "data-testid": "spec-yaml" }, toYaml(spec)),
  status,
  nav(go, 2, true, "Deploy"));
}

async function progress(body, state, ctx, stepper) {
  clear(stepper, STEPS.map((s, i) => h("li", { "aria-current": i === 4 ? "step" : null }, `${i + 1}. ${s}`)));
  const head = h("div", { "aria-live": "polite" });
  const events = h("ol", { class: "small" });
  const logs = h("pre", { class: "logs", tabindex: 0, "aria-label": "Logs" });
  clear(body, h("div", { class: "panel" }, h("h2", { tabindex: -1 }, `Deploying ${state.name}`), head,
    h("h3", {}, "Events"), events, h("h3", {}, "Logs"), logs));
  body.querySelector("h2").focus();
  await ctx.every(1000, async () => {
    const d = await api("GET", `/api/v1/deployments/${enc(state.name)}`);
    const s = d.status;
    const done = s.state === "running" || (s.state === "idle" && state.mode === "serverless");
    clear(head,
      h("p", {}, "State: ", h("span", { "data-testid": "progress-state" }, chip(s.state)), ` · replicas ${s.ready}/${s.desired} ready, ${s.starting} starting`),
      s.last_error ? errorBox({ message: s.last_error }) : null,
      s.pending ? h("p", { class: "muted" }, s.pending) : null,
      done ? h("p", { class: "row" },
        h("strong", {}, s.state === "idle" ? "Deployed: at zero until the first request." : "Ready."),
        h("a", { class: "button primary", href: `#/d/${enc(state.name)}/try` }, "Try it"),
        h("a", { class: "button", href: `#/d/${enc(state.name)}` }, "Open the deployment")) : null);
    clear(events, (d.events || []).slice().reverse().map((e) => h("li", {}, `${fmt.time(e.at)} ${e.kind}: ${e.message}`)));
    const l = await api("GET", `/api/v1/deployments/${enc(state.name)}/logs?tail=40`);
    logs.textContent = l.lines.map((x) => (typeof x === "string" ? x : JSON.stringify(x))).join("\n") || "(nothing yet)";
  });
}

export { id };
