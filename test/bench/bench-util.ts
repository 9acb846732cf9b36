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

/** A company access token from a Concur sandbox (the request-token grant), for a bench's raw calls. */
export async function sandboxAccessToken(sandbox: {
  readonly baseUrl: string;
  readonly companyId: string;
  readonly credentials: { readonly clientId: string; readonly clientSecret: string; readonly requestToken: string };
}): Promise<string> {
  const response = await fetch(`${sandbox.baseUrl}/oauth2/v0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'password',
      client_id: sandbox.credentials.clientId,
      client_secret: sandbox.credentials.clientSecret,
      username: sandbox.companyId,
      password: sandbox.credentials.requestToken,
      credtype: 'authtoken',
    }),
  });
  return ((await response.json()) as { access_token: string }).access_token;
}
