import { randomBytes } from 'node:crypto';
import type { ConcurSandboxOptions } from '../../plugins/concur/sandbox/index.js';

/** The small company most tests start: 3 approvers among 12 employees, no reports yet, its clock frozen at 2026-03-02 09:00 UTC. */
export const SMALL_COMPANY = {
  seed: 7,
  reports: 0,
  otherReports: 0,
  approvers: 3,
  employees: 12,
  clock: '2026-03-02T09:00:00.000Z',
  freezeClock: true,
} as const satisfies ConcurSandboxOptions;

/** What a deployment needs to know of a Concur sandbox, whether it runs in this process or another. */
export interface SandboxLike {
  readonly baseUrl: string;
  readonly companyId: string;
  readonly credentials: {
    readonly clientId: string;
    readonly clientSecret: string;
    readonly refreshToken: string;
    readonly requestToken: string;
  };
}

export interface SandboxSourceOptions {
  /** The source instance's id (default `acme`). */
  readonly id?: string;
  /** Prefix of the env names the secrets are read from (default `AH_TEST`: `AH_TEST_CLIENT_SECRET`, …). */
  readonly envPrefix?: string;
  /** Left out, the core's defaults apply. */
  readonly pollIntervalSeconds?: number;
  readonly sweepIntervalSeconds?: number;
  /** Also configure the sandbox's company request token, the fallback grant. */
  readonly requestToken?: boolean;
  /** Where API calls go, if not straight to the sandbox (e.g. a proxy). */
  readonly baseUrl?: string;
  /** Further Concur plugin settings; they win over the ones above. */
  readonly config?: Record<string, unknown>;
}

/**
 * The `sources[]` entry of a deployment whose Concur plugin talks to `sandbox`, the env its
 * secret references read, and a `credentials` block (with a fresh random key in that env). Secrets stay `{ env: NAME }` references, so the deployment can be logged
 * or written to a file for a child process without them.
 */
export function sandboxSource(
  sandbox: SandboxLike,
  options: SandboxSourceOptions = {},
): { source: Record<string, unknown>; env: Record<string, string>; credentials: Record<string, unknown> } {
  const prefix = options.envPrefix ?? 'AH_TEST';
  const clientSecret = `${prefix}_CLIENT_SECRET`;
  const refreshToken = `${prefix}_REFRESH_TOKEN`;
  const requestToken = `${prefix}_REQUEST_TOKEN`;
  const credentialsKey = `${prefix}_CREDENTIALS_KEY`;
  return {
    source: {
      id: options.id ?? 'acme',
      plugin: 'concur',
      ...(options.pollIntervalSeconds === undefined ? {} : { pollIntervalSeconds: options.pollIntervalSeconds }),
      ...(options.sweepIntervalSeconds === undefined ? {} : { sweepIntervalSeconds: options.sweepIntervalSeconds }),
      config: {
        baseUrl: options.baseUrl ?? sandbox.baseUrl,
        clientId: sandbox.credentials.clientId,
        clientSecret: { env: clientSecret },
        refreshToken: { env: refreshToken },
        ...(options.requestToken ? { requestToken: { env: requestToken } } : {}),
        companyId: sandbox.companyId,
        ...options.config,
      },
    },
    // The deployment's `credentials` block: a shared (PostgreSQL) queue keeps the rotating token only with a key.
    credentials: { key: { env: credentialsKey } },
    env: {
      [credentialsKey]: randomBytes(32).toString('base64'),
      [clientSecret]: sandbox.credentials.clientSecret,
      [refreshToken]: sandbox.credentials.refreshToken,
      ...(options.requestToken ? { [requestToken]: sandbox.credentials.requestToken } : {}),
    },
  };
}
