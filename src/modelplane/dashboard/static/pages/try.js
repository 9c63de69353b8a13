// "Try it": a form generated from the model's input schema (JSON Schema), the prediction's answer
// rendered by its type, and the same request as curl and Python.

import { api, enc, raw, session } from "../api.js";
import { clear, copy, download, errorBox, field, fmt, h, id } from "../dom.js";

const first = (t) => (Array.isArray(t) ? t.find((x) => x !== "null") : t);

export async function render(main, [name], ctx) {
  const d = await api("GET", `/api/v1/deployments/${enc(name)}`);
  document.title = `Try ${name} · modelplane`;
  const meta = d.status.model;
  const accepts = (meta && meta.accepts) || ["application/json"];
  const fileTypes = accepts.filter((a) => a !== "application/json");
  const schema = meta && meta.input_schema;
  const props = schema && first(schema.type) === "object" && schema.properties ? schema.properties : null;
  const required = new Set((schema && schema.required) || []);
  const controls = props
    ? Object.entries(props).map(([key, s]) => control(key, s, required.has(key), fileTypes))
    : genericControls(fileTypes);
  const answer = h("div", { class: "answer", "aria-live": "polite" }, h("p", { class: "muted" }, "Fill in the input and run a prediction: the answer shows here."));
  const snippets = h("div");
  const form = h("form", {
    class: "panel",
    onsubmit: async (e) => {
      e.preventDefault();
      const button = form.querySelector("[type=submit]");
      button.disabled = true;
      clear(answer, h("p", { class: "muted" }, d.status.ready ? "Running…" : "Running… (the first request starts a replica: a cold start)"));
      try {
        const req = build(controls, !props);
        clear(snippets, snippetsFor(name, req));
        const started = performance.now();
        const res = await raw("POST", `/api/v1/deployments/${enc(name)}/predict`, req.body, req.contentType);
        await show(answer, res, performance.now() - started);
      } catch (err) {
        clear(answer, errorBox(err));
      } finally {
        button.disabled = false;
      }
    },
  },
  h("h2", {}, "Input"),
  !meta ? h("p", { class: "muted" }, "The model's input schema is known once a replica has loaded it; until then, send JSON or a file.") : null,
  controls.map((c) => c.el),
  h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Run prediction")));
  clear(main,
    h("p", {}, h("a", { href: `#/d/${enc(name)}` }, `← ${name}`)),
    h("h1", {}, `Try ${name}`),
    h("p", { class: "sub" }, meta ? `${meta.name} ${meta.version ? `v${meta.version}` : ""} — ${meta.description || "no description"}` : "", meta ? h("span", { class: "muted small" }, ` Accepts ${accepts.join(", ")}.`) : null),
    h("div", { class: "grid2" }, form, h("div", {}, h("div", { class: "panel" }, h("h2", {}, "Answer"), answer, snippets))));
  clear(snippets, snippetsFor(name, safeBuild(controls, !props)));
  form.addEventListener("change", () => clear(snippets, snippetsFor(name, safeBuild(controls, !props))));
}

function safeBuild(controls, generic) {
  try { return build(controls, generic); } catch { return { body: "{}", contentType: "application/json", json: {}, files: [], fields: {} }; }
}

/** One form control per schema property: {key, el, read() -> value | File | File[] | undefined}. */
function control(key, s, isRequired, fileTypes) {
  const type = first(s.type);
  const title = `${s.title || key}${isRequired ? "" : " (optional)"}`;
  const hint = [s.description, range(s)].filter(Boolean).join(" · ");
  const binary = type === "string" && (s.format === "binary" || s.contentMediaType);
  const fileItems = type === "array" && s.items && first(s.items.type) === "string" && s.items.format === "binary";
  if (binary || fileItems) return fileControl(key, title, hint, fileTypes, fileItems, isRequired);
  let input;
  let read;
  if (Array.isArray(s.enum)) {
    input = h("select", { name: key, required: isRequired },
      isRequired ? null : h("option", { value: "" }, "—"),
      s.enum.map((v, i) => h("option", { value: String(i), selected: s.default === v }, String(v))));
    read = () => (input.value === "" ? undefined : s.enum[Number(input.value)]);
  } else if (type === "boolean") {
    input = h("input", { type: "checkbox", name: key, checked: Boolean(s.default) });
    read = () => input.checked;
  } else if (type === "integer" || type === "number") {
    input = h("input", {
      type: "number", name: key, required: isRequired, value: s.default ?? "",
      min: s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum : null),
      max: s.maximum ?? (s.exclusiveMaximum !== undefined ? s.exclusiveMaximum : null),
      step: type === "integer" ? 1 : "any",
    });
    read = () => (input.value === "" ? undefined : Number(input.value));
  } else if (type === "string") {
    input = s.maxLength && s.maxLength <= 120
      ? h("input", { type: "text", name: key, required: isRequired, maxlength: s.maxLength, value: s.default ?? "" })
      : h("textarea", { name: key, required: isRequired, rows: 3, maxlength: s.maxLength ?? null });
    if (input.tagName === "TEXTAREA" && s.default !== undefined) input.value = s.default;
    read = () => (input.value === "" && !isRequired ? undefined : input.value);
  } else if (type === "array" && s.items && ["string", "number", "integer"].includes(first(s.items.type)) && !s.items.enum) {
    const itemType = first(s.items.type);
    input = h("textarea", { name: key, rows: 4, required: isRequired, placeholder: "one item per line" });
    if (Array.isArray(s.default)) input.value = s.default.join("\n");
    read = () => {
      const lines = input.value.split("\n").map((l) => l.trim()).filter((l) => l !== "");
      if (!lines.length && !isRequired) return undefined;
      return itemType === "string" ? lines : lines.map(Number);
    };
  } else {
    input = h("textarea", { name: key, rows: 5, required: isRequired, placeholder: "JSON", spellcheck: "false" });
    if (s.default !== undefined) input.value = JSON.stringify(s.default);
    read = () => {
      if (input.value.trim() === "") return undefined;
      try { return JSON.parse(input.value); } catch (err) { throw new Error(`${key}: not valid JSON (${err.message})`); }
    };
  }
  const valueBox = field(title, input, hint);
  // The model also takes files (e.g. a picture instead of a grid of numbers): offer both, for
  // the structured fields a file can stand for (never for a plain number, choice or flag).
  const complex = type === "array" || type === "object";
  if (!fileTypes.length || !complex) return { key, el: valueBox, read };
  const file = fileControl(key, `${title}: file`, "", fileTypes, false, isRequired);
  const name = id("mode");
  let useFile = complex;
  const radios = h("div", { class: "row", role: "radiogroup", "aria-label": `How to give ${key}` },
    h("label", { class: "inline" }, h("input", { type: "radio", name, value: "value", checked: !useFile, onchange: () => { useFile = false; sync(); } }), "Type a value"),
    h("label", { class: "inline" }, h("input", { type: "radio", name, value: "file", checked: useFile, onchange: () => { useFile = true; sync(); } }), "Upload a file"));
  const fileInput = file.el.querySelector("input");
  const sync = () => {
    valueBox.hidden = useFile;
    file.el.hidden = !useFile;
    input.required = isRequired && !useFile; // a hidden control must not block the form
    fileInput.required = isRequired && useFile;
  };
  sync();
  return {
    key,
    el: h("fieldset", {}, h("legend", {}, key), radios, valueBox, file.el),
    read: () => (useFile ? file.read() : read()),
  };
}

function fileControl(key, title, hint, fileTypes, multiple, isRequired) {
  const accept = fileTypes.filter((t) => t !== "*/*").join(",") || null;
  const input = h("input", { type: "file", name: key, multiple, accept, required: isRequired });
  const preview = h("div", { class: "preview" });
  input.addEventListener("change", () => {
    clear(preview, [...input.files].map((f) => {
      const url = URL.createObjectURL(f);
      if (f.type.startsWith("image/")) return h("img", { src: url, alt: `Preview of ${f.name}` });
      if (f.type.startsWith("audio/")) return h("audio", { src: url, controls: true, "aria-label": `Preview of ${f.name}` });
      return h("div", { class: "small muted" }, `${f.name} · ${fmt.bytes(f.size)}`);
    }));
  });
  return {
    key,
    el: h("div", {}, field(title, input, hint || `Accepted: ${fileTypes.join(", ")}`), preview),
    read: () => (multiple ? [...input.files] : input.files[0]),
  };
}

function genericControls(fileTypes) {
  const text = h("textarea", { name: "body", rows: 8, placeholder: '{"key": "value"}', spellcheck: "false" });
  const out = [{ key: "__json", el: field("JSON body", text, "No input schema is known: the body is sent as it is."), read: () => text.value }];
  if (fileTypes.length) {
    const f = fileControl("__file", "…or a file (sent as the body)", "", fileTypes, false, false);
    out.push(f);
  }
  return out;
}

function range(s) {
  const lo = s.minimum ?? s.exclusiveMinimum;
  const hi = s.maximum ?? s.exclusiveMaximum;
  if (lo !== undefined && hi !== undefined) return `from ${lo} to ${hi}`;
  if (lo !== undefined) return `at least ${lo}`;
  if (hi !== undefined) return `at most ${hi}`;
  if (s.minItems !== undefined || s.maxItems !== undefined) return `${s.minItems ?? 0}–${s.maxItems ?? "∞"} items`;
  return "";
}

/** The request: JSON unless a file is involved (then multipart; a lone generic file: raw). */
function build(controls, generic) {
  if (generic) {
    const file = controls[1] && controls[1].read();
    if (file) return { body: file, contentType: file.type || "application/octet-stream", rawFile: file, json: null, files: [], fields: {} };
    const text = controls[0].read().trim() || "{}";
    try { JSON.parse(text); } catch (err) { throw new Error(`The body is not valid JSON: ${err.message}`); }
    return { body: text, contentType: "application/json", json: JSON.parse(text), files: [], fields: {} };
  }
  const json = {};
  const files = [];
  for (const c of controls) {
    const v = c.read();
    if (v === undefined) continue;
    if (v instanceof File) files.push([c.key, v]);
    else if (Array.isArray(v) && v.length && v[0] instanceof File) v.forEach((f) => files.push([c.key, f]));
    else json[c.key] = v;
  }
  if (!files.length) return { body: JSON.stringify(json), contentType: "application/json", json, files, fields: {} };
  const form = new FormData();
  for (const [k, v] of Object.entries(json)) form.append(k, JSON.stringify(v));
  for (const [k, f] of files) form.append(k, f, f.name);
  return { body: form, contentType: null, json: null, files, fields: json };
}

async function show(box, res, ms) {
  const ctype = (res.headers.get("content-type") || "").split(";")[0];
  const took = h("p", { class: "muted small" }, `HTTP ${res.status} · ${ctype || "no type"} · ${fmt.ms(ms)}`);
  const blob = await res.blob();
  const filename = res.headers.get("x-output-key") || `answer.${ctype.split("/")[1] || "bin"}`;
  const save = h("button", { type: "button", onclick: () => download(blob, filename) }, "Download the answer");
  if (ctype.endsWith("json")) {
    const text = await blob.text();
    let pretty = text;
    try { pretty = JSON.stringify(JSON.parse(text), null, 2); } catch { /* shown as it came */ }
    clear(box, took, h("pre", { "data-testid": "answer-json" }, pretty), save);
  } else if (ctype.startsWith("image/")) {
    clear(box, took, h("img", { src: URL.createObjectURL(blob), alt: "The model's answer (an image)" }), save);
  } else if (ctype.startsWith("audio/")) {
    clear(box, took, h("audio", { src: URL.createObjectURL(blob), controls: true }), save);
  } else if (ctype.startsWith("text/")) {
    clear(box, took, h("pre", {}, await blob.text()), save);
  } else {
    // an untyped file (an OSCAR script's output): shown too when it is small, readable text
    let text = null;
    if (blob.size <= 65536) {
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(await blob.arrayBuffer());
        if (/[\u0000-\u0008\u000e-\u001f]/.test(text)) text = null;
      } catch { text = null; }
    }
    clear(box, took, h("p", {}, `A file of ${fmt.bytes(blob.size)}${text !== null ? ", as text:" : "."}`), text !== null ? h("pre", {}, text) : null, save);
  }
}

function shq(s) { return `'${String(s).replace(/'/g, "'\\''")}'`; }

function snippetsFor(name, req) {
  const url = `${location.origin}/api/v1/deployments/${name}/predict`;
  const local = session.info && session.info.local_mode;
  const auth = local ? "" : ' \\\n  -H "Authorization: Bearer $MODELPLANE_TOKEN"';
  const pyAuth = local ? "" : 'headers={"Authorization": f"Bearer {token}"}, ';
  const pyToken = local ? "" : 'token = os.environ["MODELPLANE_TOKEN"]  # your token: modelplane tokens create\n';
  let curl;
  let py;
  if (req.rawFile) {
    curl = `curl -X POST ${shq(url)}${auth} \\\n  -H ${shq(`Content-Type: ${req.contentType}`)} \\\n  --data-binary @${shq(req.rawFile.name)}`;
    const hdrs = `{${local ? "" : '"Authorization": f"Bearer {token}", '}"Content-Type": ${JSON.stringify(req.contentType)}}`;
    py = `import os, httpx\n${pyToken}with open(${JSON.stringify(req.rawFile.name)}, "rb") as f:\n    r = httpx.post(${JSON.stringify(url)}, headers=${hdrs},\n                   content=f.read(), timeout=120)\nprint(r.headers["content-type"], r.content[:200])`;
  } else if (req.files.length) {
    const parts = [
      ...Object.entries(req.fields).map(([k, v]) => `-F ${shq(`${k}=${JSON.stringify(v)}`)}`),
      ...req.files.map(([k, f]) => `-F ${shq(`${k}=@${f.name};type=${f.type || "application/octet-stream"}`)}`),
    ];
    curl = `curl -X POST ${shq(url)}${auth} \\\n  ${parts.join(" \\\n  ")}`;
    const files = req.files.map(([k, f]) => `(${JSON.stringify(k)}, (${JSON.stringify(f.name)}, open(${JSON.stringify(f.name)}, "rb"), ${JSON.stringify(f.type || "application/octet-stream")}))`);
    const data = Object.entries(req.fields).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(JSON.stringify(v))}`);
    py = `import os, httpx\n${pyToken}r = httpx.post(\n    ${JSON.stringify(url)},\n    ${pyAuth}files=[${files.join(", ")}],${data.length ? `\n    data={${data.join(", ")}},` : ""}\n    timeout=120,\n)\nprint(r.json())`;
  } else {
    const body = JSON.stringify(req.json ?? {});
    curl = `curl -X POST ${shq(url)}${auth} \\\n  -H 'Content-Type: application/json' \\\n  -d ${shq(body)}`;
    py = `import os, httpx\n${pyToken}r = httpx.post(\n    ${JSON.stringify(url)},\n    ${pyAuth}json=${pyLiteral(req.json ?? {})},\n    timeout=120,\n)\nprint(r.json())`;
  }
  const block = (title, text) => h("div", {},
    h("div", { class: "row spread" }, h("h3", {}, title), h("button", { type: "button", onclick: () => copy(text) }, `Copy ${title}`)),
    h("pre", { class: "code", "data-testid": `snippet-${title.toLowerCase()}` }, text));
  return h("div", {}, h("h2", {}, "The same from code"),
    local ? null : h("p", { class: "muted small" }, "Replace $MODELPLANE_TOKEN with your token (or export it); an inference token made with `modelplane tokens create --deployment " + name + "` is enough."),
    block("curl", curl), block("Python", py));
}

function pyLiteral(v) {
  return JSON.stringify(v).replace(/\btrue\b/g, "True").replace(/\bfalse\b/g, "False").replace(/\bnull\b/g, "None");
}
