// Small DOM helpers. Text always goes in as text nodes: nothing from the API is parsed as HTML.

export function h(tag, attrs, ...children) {
  const el = document.createElementNS(
    tag.startsWith("svg:") ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml",
    tag.replace(/^svg:/, ""),
  );
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.setAttribute("class", value);
    else if (key in el && !tag.startsWith("svg:") && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export const fmt = {
  num(v, digits = 1) {
    if (v === null || v === undefined || Number.isNaN(v)) return "—";
    return Number(v).toLocaleString(undefined, { maximumFractionDigits: digits });
  },
  ms(v) {
    if (v === null || v === undefined) return "—";
    return v < 1 ? `${v.toFixed(2)} ms` : v < 1000 ? `${v.toFixed(1)} ms` : `${(v / 1000).toFixed(2)} s`;
  },
  bytes(v) {
    if (v === null || v === undefined) return "—";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
  },
  time(iso) {
    if (!iso) return "—";
    const d = typeof iso === "number" ? new Date(iso * 1000) : new Date(iso);
    return d.toLocaleTimeString();
  },
  when(iso) {
    if (!iso) return "—";
    return new Date(iso).toLocaleString();
  },
};

export function chip(state) {
  return h("span", { class: `chip state-${state}` }, state);
}

export function empty(title, text, ...actions) {
  return h("div", { class: "empty" }, h("strong", {}, title), h("p", {}, text), actions);
}

export function errorBox(err) {
  return h(
    "div",
    { class: "error", role: "alert" },
    err.message || String(err),
    err.hint ? h("span", { class: "hint" }, err.hint) : null,
  );
}

export function toast(text) {
  const box = document.getElementById("toast");
  const item = h("div", {}, text);
  box.append(item);
  setTimeout(() => item.remove(), 4000);
}

let uid = 0;
export function id(prefix = "f") {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled form control: the label is tied to the control for screen readers. */
export function field(labelText, control, hint) {
  if (!control.id) control.id = id();
  const hintEl = hint ? h("div", { class: "hint", id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: control.id }, labelText), control, hintEl);
}

export function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast("Copied");
  } catch {
    toast("Select the text and copy it (the clipboard is not available here)");
  }
}
