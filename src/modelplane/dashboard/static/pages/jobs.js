// Jobs and buckets: drop files into a deployment's input bucket (each becomes a job), watch the
// jobs move, download results, retry failed ones; browse buckets.

import { api, enc, keyPath, raw, upload } from "../api.js";
import { chip, clear, download, empty, errorBox, field, fmt, h, toast } from "../dom.js";

export async function render(main, [name], ctx) {
  const all = await api("GET", "/api/v1/deployments");
  const withJobs = all.filter((d) => d.spec.input && d.spec.output);
  clear(main, h("h1", {}, "Jobs & buckets"),
    h("p", { class: "sub" }, "Files uploaded to a deployment's input bucket become jobs; each result lands in its output bucket."));
  if (!withJobs.length) {
    main.append(h("div", { class: "panel" }, empty("No deployment takes jobs yet",
      "Give a deployment an input and an output bucket (the wizard's last step, or `input:`/`output:` in its spec) and drop files here.",
      h("a", { class: "button primary", href: "#/deploy" }, "Deploy with buckets"))));
    await buckets(main);
    await batches(main, all, ctx);
    return;
  }
  const current = withJobs.find((d) => d.name === name) || withJobs[0];
  const picker = h("select", { id: "job-deployment", onchange: (e) => { location.hash = `#/jobs/${enc(e.target.value)}`; } },
    withJobs.map((d) => h("option", { value: d.name, selected: d.name === current.name }, `${d.name} (${d.spec.input} → ${d.spec.output})`)));
  main.append(h("div", { class: "panel row" }, h("label", { for: "job-deployment" }, "Deployment"), picker));
  const uploads = h("div", { "aria-live": "polite" });
  const batch = h("div");
  const table = h("div", { class: "panel table-wrap" });
  main.append(dropzone(current, uploads), uploads, batch, h("h2", {}, "Jobs"), table);
  const refreshBuckets = await buckets(main);
  await batches(main, all, ctx);
  let seen = -1;
  await ctx.every(2000, async () => {
    const r = await api("GET", `/api/v1/deployments/${enc(current.name)}/jobs?limit=500`);
    if (!ctx.alive) return;
    const finished = (r.counts.succeeded || 0) + (r.counts.failed || 0) + r.jobs.length;
    if (seen !== -1 && finished !== seen && refreshBuckets) await refreshBuckets();
    seen = finished;
    drawBatch(batch, r.counts);
    drawJobs(table, current, r.jobs.slice().reverse());
  });
}

function dropzone(dep, uploads) {
  const input = h("input", { type: "file", multiple: true, id: "job-files", class: "sr-only" });
  const zone = h("div", { class: "dropzone", "data-testid": "dropzone" },
    h("p", {}, h("strong", {}, "Drop files here"), " or ",
      h("label", { for: "job-files", class: "button", tabindex: 0, onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } } }, "choose files")),
    h("p", { class: "muted small" }, `They go to bucket ${dep.spec.input}; each becomes a job of ${dep.name}.`), input);
  const send = (files) => Promise.all([...files].map((f) => sendOne(dep, f, uploads)));
  input.addEventListener("change", () => { send(input.files); input.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); send(e.dataTransfer.files); });
  return zone;
}

async function sendOne(dep, file, uploads) {
  const bar = h("progress", { max: 1, value: 0, "aria-label": `Uploading ${file.name}` });
  const line = h("div", { class: "panel small" }, h("div", { class: "row spread" }, h("span", {}, file.name), h("span", { class: "muted" }, fmt.bytes(file.size))), bar);
  uploads.append(line);
  try {
    await upload("PUT", `/api/v1/buckets/${enc(dep.spec.input)}/objects/${keyPath(file.name)}`, file, file.type || "application/octet-stream", (f) => { bar.value = f; });
    bar.value = 1;
    setTimeout(() => line.remove(), 1500);
  } catch (err) {
    line.append(errorBox(err));
  }
}

function drawBatch(box, counts) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  if (!total) return clear(box);
  const done = (counts.succeeded || 0) + (counts.failed || 0);
  clear(box, h("div", { class: "panel" },
    h("div", { class: "row spread" }, h("strong", {}, `${done} of ${total} done`),
      h("span", { class: "small" }, ["queued", "running", "succeeded", "failed"].map((s) => [chip(s), ` ${counts[s] || 0}  `]))),
    h("progress", { max: total, value: done, "aria-label": "Jobs done" })));
}

function drawJobs(box, dep, jobs) {
  if (!jobs.length) return clear(box, empty("No jobs yet", "Drop files above: each one becomes a job."));
  clear(box, h("table", { "data-testid": "jobs", class: "cards" },
    h("thead", {}, h("tr", {}, ["Input", "State", "Attempts", "Took", "Created", ""].map((c, i) => h("th", { scope: "col", class: i === 2 || i === 3 ? "num" : null }, c)))),
    h("tbody", {}, jobs.map((j) => h("tr", { "data-key": j.input.key },
      h("td", { class: "card-title" }, j.input.key, j.error ? h("div", { class: "small state-failed" }, j.error) : null),
      h("td", { "data-label": "State" }, chip(j.state)),
      h("td", { class: "num", "data-label": "Attempts" }, `${j.attempts}/${j.max_attempts}`),
      h("td", { class: "num", "data-label": "Took" }, j.duration_seconds === null ? "—" : `${j.duration_seconds.toFixed(3)} s`),
      h("td", { "data-label": "Created" }, fmt.time(j.created_at)),
      h("td", {},
        j.state === "succeeded" ? h("button", { type: "button", onclick: () => result(dep, j) }, `Download ${j.output.key}`) : null,
        j.state === "failed" ? h("button", { type: "button", onclick: () => retry(dep, j) }, "Retry") : null))))));
}

async function result(dep, job) {
  try {
    const res = await raw("GET", `/api/v1/deployments/${enc(dep.name)}/jobs/${enc(job.id)}/result`);
    download(await res.blob(), (res.headers.get("x-output-key") || job.output.key).split("/").pop());
  } catch (err) { toast(err.message); }
}

async function retry(dep, job) {
  try {
    await api("POST", `/api/v1/deployments/${enc(dep.name)}/jobs/${enc(job.id)}/retry`);
    toast(`${job.input.key}: queued again`);
  } catch (err) { toast(err.message); }
}

async function buckets(main) {
  const box = h("div", { class: "panel" });
  main.append(h("h2", {}, "Buckets"), box);
  const list = await api("GET", "/api/v1/buckets");
  if (!list.length) {
    clear(box, empty("No buckets", "Buckets are made when a deployment names them as its input or output."));
    return null;
  }
  const objects = h("div", { class: "table-wrap" });
  const picker = h("select", { id: "bucket-pick", onchange: () => show(picker.value) }, list.map((b) => h("option", { value: b.name }, b.name)));
  const show = async (bucket) => {
    try {
      const r = await api("GET", `/api/v1/buckets/${enc(bucket)}/objects`);
      if (!r.objects.length) return clear(objects, empty("Empty bucket", "Nothing in it yet."));
      clear(objects, h("table", {}, h("thead", {}, h("tr", {}, ["Key", "Size", "Type", "Modified", ""].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, r.objects.map((o) => h("tr", {}, h("td", {}, o.key), h("td", { class: "num" }, fmt.bytes(o.size)), h("td", {}, o.content_type || "—"), h("td", {}, fmt.when(o.last_modified)),
          h("td", {}, h("button", { type: "button", onclick: async () => {
            try {
              const res = await raw("GET", `/api/v1/buckets/${enc(bucket)}/objects/${keyPath(o.key)}`);
              download(await res.blob(), o.key.split("/").pop());
            } catch (err) { toast(err.message); }
          } }, "Download")))))));
    } catch (err) { clear(objects, errorBox(err)); }
  };
  const refresh = h("button", { type: "button", onclick: () => show(picker.value) }, "Refresh");
  clear(box, h("div", { class: "row" }, h("label", { for: "bucket-pick" }, "Bucket"), picker, refresh), objects);
  await show(list[0].name);
  return () => show(picker.value);
}

async function batches(main, deployments, ctx) {
  const box = h("div", { class: "panel table-wrap" });
  const status = h("div", { "aria-live": "polite" });
  const dep = h("select", { name: "batch-deployment" }, deployments.map((d) => h("option", { value: d.name }, d.name)));
  const input = h("input", { type: "text", name: "batch-input", placeholder: "bucket/prefix or s3://bucket/prefix", required: true, spellcheck: "false" });
  const output = h("input", { type: "text", name: "batch-output", placeholder: "bucket/prefix", required: true, spellcheck: "false" });
  const form = h("form", {
    class: "panel",
    onsubmit: async (e) => {
      e.preventDefault();
      clear(status);
      try {
        await api("POST", "/api/v1/batches", { deployment: dep.value, input: input.value.trim(), output: output.value.trim() });
        toast("Batch run started");
        await draw();
      } catch (err) { clear(status, errorBox(err)); }
    },
  }, h("h3", {}, "Start a batch run"),
  h("p", { class: "muted small" }, "Runs a deployment over every object under an input prefix; resumable, results under the output prefix."),
  h("div", { class: "grid3" }, field("Deployment", dep), field("Input", input), field("Output", output)),
  h("button", { type: "submit", class: "primary", disabled: !deployments.length }, "Start"), status);
  const draw = async () => {
    const r = await api("GET", "/api/v1/batches");
    if (!ctx.alive) return;
    if (!r.batches.length) return clear(box, empty("No batch runs", "Start one below, or with `modelplane batch`."));
    clear(box, h("table", { class: "cards", "data-testid": "batches" },
      h("thead", {}, h("tr", {}, ["Run", "State", "Progress", "Rate", "ETA", ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, r.batches.map((b) => {
        const finished = b.done + b.failed + b.skipped;
        return h("tr", {},
          h("td", { class: "card-title" }, `${b.deployment || "one-off"}: ${b.input} → ${b.output}`),
          h("td", { "data-label": "State" }, chip(b.state)),
          h("td", { "data-label": "Progress" }, h("progress", { max: Math.max(b.total, 1), value: finished, "aria-label": `${finished} of ${b.total}` }),
            h("div", { class: "small muted" }, `${finished}/${b.total} · ${b.failed} failed`)),
          h("td", { "data-label": "Rate" }, b.rate_per_second === null ? "—" : `${b.rate_per_second}/s`),
          h("td", { "data-label": "ETA" }, b.eta_seconds === null ? "—" : `${b.eta_seconds} s`),
          h("td", {},
            b.state === "running" || b.state === "queued" ? h("button", { type: "button", onclick: () => act("DELETE", b.id, "cancelled") }, "Cancel") : null,
            b.failed && b.state !== "running" ? h("button", { type: "button", onclick: () => act("POST", b.id, "retrying its failures", "/retry") }, "Retry failures") : null));
      }))));
  };
  const act = async (method, id, what, tail = "") => {
    try { await api(method, `/api/v1/batches/${enc(id)}${tail}`); toast(`Batch ${what}`); await draw(); } catch (err) { toast(err.message); }
  };
  main.append(h("h2", {}, "Batch runs"), box, form);
  await ctx.every(2000, draw);
}
