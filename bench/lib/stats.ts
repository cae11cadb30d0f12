/** Summary describes a set of latencies (ms) measured over a wall-clock duration (s). */
export interface Summary {
  readonly count: number
  readonly seconds: number
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
  readonly max: number
}

/** percentile of a sorted array (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN
}

/** summarize turns latencies and a duration into a Summary. */
export function summarize(latencies: readonly number[], seconds: number): Summary {
  const sorted = [...latencies].sort((a, b) => a - b)
  const round = (n: number) => Math.round(n * 100) / 100
  return {
    count: sorted.length,
    seconds: round(seconds),
    perSecond: round(sorted.length / seconds),
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1] ?? Number.NaN),
  }
}

/** ratio rounds a/b to two decimals. */
export const ratio = (a: number, b: number): number => Math.round((a / b) * 100) / 100
