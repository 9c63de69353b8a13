// A small SVG time-series chart: lines (or dots) over wall-clock time, labelled axes, and a
// text alternative for screen readers. About a hundred lines instead of a charting library.

import { h } from "./dom.js";

const W = 560;
const H = 180;
const PAD = { left: 46, right: 10, top: 10, bottom: 24 };

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 4, 5, 8, 10]) if (m * p >= v) return m * p; // quarters stay round
  return 10 * p;
}

function label(v) {
  if (v >= 1000) return `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(v < 1 ? 2 : 1);
}

/**
 * series: [{name, points: [[unixSeconds, value|null], …], dots?: bool}]
 * opts: {title, unit, step?: bool (replica counts are steps), window?: seconds}
 */
export function timeChart(series, opts) {
  const all = series.flatMap((s) => s.points.filter((p) => p[1] !== null && p[1] !== undefined));
  const now = Date.now() / 1000;
  const t1 = Math.max(now, ...all.map((p) => p[0]));
  // Show what there is: from the oldest point (at least two minutes), at most `window` seconds.
  const oldest = Math.min(t1, ...all.map((p) => p[0]));
  const t0 = t1 - Math.min(opts.window || 900, Math.max(120, t1 - oldest));
  const ymax = niceMax(Math.max(0, ...all.map((p) => p[1])));
  const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / ymax) * (H - PAD.top - PAD.bottom);
  const svg = h("svg:svg", {
    viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
    "aria-label": `${opts.title}: ${describe(series, opts.unit)}`,
  });
  for (let i = 0; i <= 4; i++) {
    const v = (ymax * i) / 4;
    svg.append(
      h("svg:line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "axis", "stroke-width": 1 }),
      h("svg:text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, label(v)),
    );
  }
  for (let i = 0; i <= 3; i++) {
    const t = t0 + ((t1 - t0) * i) / 3;
    const d = new Date(t * 1000);
    const two = (n) => String(n).padStart(2, "0");
    const text = `${two(d.getHours())}:${two(d.getMinutes())}${t1 - t0 < 600 ? `:${two(d.getSeconds())}` : ""}`;
    svg.append(h("svg:text", { x: x(t), y: H - 6, "text-anchor": i === 0 ? "start" : i === 3 ? "end" : "middle" }, text));
  }
  // drawn last to first, so the first series (the one that matters most) is on top
  series.map((s, i) => [s, i]).reverse().forEach(([s, i]) => {
    const pts = s.points.filter((p) => p[0] >= t0);
    if (s.dots) {
      for (const [t, v] of pts) {
        if (v === null || v === undefined) continue;
        svg.append(h("svg:circle", { cx: x(t), cy: y(v), r: 4, class: "dot" }, h("svg:title", {}, `${v} ${opts.unit} at ${new Date(t * 1000).toLocaleTimeString()}`)));
      }
      return;
    }
    let d = "";
    let pen = false;
    let last = null;
    for (const [t, v] of pts) {
      if (v === null || v === undefined) { pen = false; continue; }
      if (pen && opts.step && last !== null) d += `L${x(t).toFixed(1)},${y(last).toFixed(1)}`;
      d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
      last = v;
    }
    if (d) svg.append(h("svg:path", { d, class: `s${i}`, fill: "none", "stroke-width": 2 }));
  });
  const legend = h("div", { class: "legend", "aria-hidden": "true" }, series.map((s, i) => h("span", { class: `k${i}` }, s.name)));
  return h("figure", { class: "panel" }, h("h3", {}, opts.title, h("span", { class: "muted small" }, ` (${opts.unit})`)), svg, legend);
}

function describe(series, unit) {
  return series
    .map((s) => {
      const values = s.points.map((p) => p[1]).filter((v) => v !== null && v !== undefined);
      if (!values.length) return `${s.name}: no data yet`;
      return `${s.name}: latest ${label(values.at(-1))} ${unit}, highest ${label(Math.max(...values))}`;
    })
    .join("; ");
}
