/** Small formatting helpers shared by the views. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** A SPIFFE ID without its trust domain: `ns/shop/sa/web`. */
export function shortId(spiffeId: string): string {
  return spiffeId.replace(/^spiffe:\/\/[^/]+\//, "");
}
