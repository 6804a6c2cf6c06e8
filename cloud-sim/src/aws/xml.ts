/**
 * A tiny XML writer for EC2 Query responses: elements in document order, text escaped, lists as
 * `<xSet><item>…</item></xSet>`, absent values left out (EC2 omits unset members).
 */

export type XmlValue = string | number | boolean | null | undefined | XmlNode | XmlNode[];
/** Children in order; an array value is a list whose entries are rendered as `<item>`. */
export type XmlNode = { [name: string]: XmlValue };

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!);
}

function child(name: string, v: XmlValue): string {
  if (v === undefined || v === null) return "";
  if (Array.isArray(v)) return `<${name}>${v.map((i) => `<item>${render(i)}</item>`).join("")}</${name}>`;
  if (typeof v === "object") return `<${name}>${render(v)}</${name}>`;
  return `<${name}>${escapeXml(String(v))}</${name}>`;
}

export function render(node: XmlNode): string {
  return Object.entries(node).map(([k, v]) => child(k, v)).join("");
}

/** The whole document: `<?xml…?><Root xmlns="…">children</Root>`. */
export function document(root: string, ns: string | undefined, body: XmlNode): string {
  const attr = ns === undefined ? "" : ` xmlns="${escapeXml(ns)}"`;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root}${attr}>${render(body)}</${root}>`;
}
