/**
 * Small statistics over benchmark samples: median, percentiles (linear interpolation between
 * closest ranks, as numpy's default) and a min/avg/max/p50 summary. Pure.
 */

export interface Summary {
  n: number;
  min: number;
  avg: number;
  max: number;
  p50: number;
}

/** The p-th percentile (0 ≤ p ≤ 100) of xs; NaN when xs is empty. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = (Math.min(100, Math.max(0, p)) / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (rank - lo);
}

export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

/** min/avg/max/p50 of xs; every field NaN (n = 0) when xs is empty. */
export function summarize(xs: readonly number[]): Summary {
  if (xs.length === 0) return { n: 0, min: Number.NaN, avg: Number.NaN, max: Number.NaN, p50: Number.NaN };
  return {
    n: xs.length,
    min: Math.min(...xs),
    avg: xs.reduce((s, x) => s + x, 0) / xs.length,
    max: Math.max(...xs),
    p50: median(xs),
  };
}

/** a / b, or NaN when either is not a finite number or b is 0. */
export function ratio(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : Number.NaN;
}
