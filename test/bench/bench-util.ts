/** Helpers the benchmarks share: percentiles, progress lines, timing. */

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summarise(samples: readonly number[]): { n: number; p50: number; p99: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN };
}

/** Progress for long runs, on stderr so the figures on stdout stay clean. */
export function progress(message: string): void {
  process.stderr.write(`  … ${message}\n`);
}

export const round = (n: number, digits = 3): number => Number(n.toFixed(digits));

export function peakRssMb(): number {
  return round(process.resourceUsage().maxRSS / 1024, 1);
}
