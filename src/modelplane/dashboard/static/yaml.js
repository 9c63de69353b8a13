// Render a JSON value as YAML for people to read (the spec review). Strings that YAML would
// read as something else are quoted; the output parses back to the same value.

const PLAIN = /^[A-Za-z_/.][\w./-]*$/;
const RESERVED = /^(true|false|yes|no|on|off|null|~|y|n)$/i;

function scalar(v) {
  if (v === null || v === undefined) return "null";
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  const s = String(v);
  if (PLAIN.test(s) && !RESERVED.test(s)) return s;
  return JSON.stringify(s);
}

export function toYaml(value, indent = "") {
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    return value
      .map((item) => {
        const inner = toYaml(item, `${indent}  `);
        return `${indent}- ${typeof item === "object" && item !== null ? inner.trimStart() : inner}`;
      })
      .join("\n");
  }
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (!keys.length) return "{}";
    return keys
      .map((k) => {
        const v = value[k];
        if (v && typeof v === "object" && Object.keys(v).length) {
          return `${indent}${scalar(k)}:\n${toYaml(v, `${indent}  `)}`;
        }
        return `${indent}${scalar(k)}: ${toYaml(v, "")}`;
      })
      .join("\n");
  }
  return scalar(value);
}
