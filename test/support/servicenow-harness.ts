import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Host } from '../../core/host/host.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { createLogger } from '../../core/host/logging.js';
import { RecordingNotifier } from '../../core/testing/index.js';
import { startServiceNowSandbox, type ServiceNowSandbox, type ServiceNowSandboxOptions } from '../../plugins/servicenow/sandbox/index.js';

export const SNOW_SOURCE = 'snow';

/** An empty instance (no seeded tasks), its clock frozen at 2026-03-02 09:00 UTC, ties in unstable order. */
export const EMPTY_INSTANCE = {
  seed: 11,
  requestedItems: 0,
  changeRequests: 0,
  users: 8,
  approvers: 4,
  clock: '2026-03-02T09:00:00.000Z',
  freezeClock: true,
} as const satisfies ServiceNowSandboxOptions;

export interface ServiceNowSourceOptions {
  readonly id?: string;
  readonly pollIntervalSeconds?: number;
  readonly sweepIntervalSeconds?: number;
  /** `basic` signs in as the integration user; default OAuth client credentials. */
  readonly auth?: 'oauth' | 'basic';
  /** Further plugin settings; they win over the ones above. */
  readonly config?: Record<string, unknown>;
}

/**
 * The `sources[]` entry of a deployment whose ServiceNow plugin talks to `sandbox`, and the env its
 * secret references read (with a fresh credential key). Secrets stay `{ env: NAME }` references.
 */
export function serviceNowSource(
  sandbox: ServiceNowSandbox,
  options: ServiceNowSourceOptions = {},
): { source: Record<string, unknown>; env: Record<string, string>; credentials: Record<string, unknown> } {
  const { clientId, clientSecret, username, password } = sandbox.credentials;
  const auth =
    options.auth === 'basic'
      ? { type: 'basic', username, password: { env: 'AH_SNOW_PASSWORD' } }
      : { type: 'oauth', clientId, clientSecret: { env: 'AH_SNOW_CLIENT_SECRET' }, grant: 'client_credentials' };
  return {
    source: {
      id: options.id ?? SNOW_SOURCE,
      plugin: 'servicenow',
      ...(options.pollIntervalSeconds === undefined ? {} : { pollIntervalSeconds: options.pollIntervalSeconds }),
      ...(options.sweepIntervalSeconds === undefined ? {} : { sweepIntervalSeconds: options.sweepIntervalSeconds }),
      config: { instanceUrl: sandbox.url, auth, ...options.config },
    },
    credentials: { key: { env: 'AH_SNOW_CREDENTIALS_KEY' } },
    env: { AH_SNOW_CREDENTIALS_KEY: randomBytes(32).toString('base64'), AH_SNOW_CLIENT_SECRET: clientSecret, AH_SNOW_PASSWORD: password },
  };
}

export interface ServiceNowHarness {
  readonly sandbox: ServiceNowSandbox;
  readonly notifier: RecordingNotifier;
  /** Every log line the host wrote, as written. */
  readonly logs: string[];
  host: Host;
  /** One detection + processing + delivery cycle; throws if the source failed. */
  cycle(): Promise<Awaited<ReturnType<Host['runOnce']>>>;
  /** Stops the host and starts a new one on the same database (a restart). */
  restart(): Promise<void>;
  /** Moves the sandbox clock, which is also the host's clock. */
  advance(seconds: number): void;
  close(): Promise<void>;
}

export interface ServiceNowHarnessOptions {
  readonly sandbox?: ServiceNowSandboxOptions;
  readonly config?: Record<string, unknown>;
  readonly sweepIntervalSeconds?: number;
  readonly auth?: 'oauth' | 'basic';
}

/**
 * A host with the real ServiceNow plugin and a real SQLite queue, talking HTTP on loopback to a
 * ServiceNow sandbox whose clock is the host's clock. Only the chat channel is a recorder.
 */
export async function serviceNowHarness(options: ServiceNowHarnessOptions = {}): Promise<ServiceNowHarness> {
  const sandbox = await startServiceNowSandbox({ ...EMPTY_INSTANCE, ...options.sandbox });
  const dbPath = join(mkdtempSync(join(tmpdir(), 'ah-servicenow-')), 'queue.db');
  const notifier = new RecordingNotifier('chat');
  const logs: string[] = [];
  const snow = serviceNowSource(sandbox, {
    pollIntervalSeconds: 60,
    sweepIntervalSeconds: options.sweepIntervalSeconds ?? 900,
    auth: options.auth,
    config: { timeoutSeconds: 2, maxAttempts: 3, ...options.config },
  });
  const raw = { queue: { adapter: 'sqlite', config: { path: dbPath } }, sources: [snow.source], notifiers: [], credentials: snow.credentials };
  const start = () =>
    Host.create(loadDeployment(undefined, { raw: structuredClone(raw), env: snow.env }), {
      clock: { now: () => new Date(`${sandbox.admin.now().replace(' ', 'T')}Z`) },
      logger: createLogger({ level: 'debug', destination: { write: (line: string) => void logs.push(line) } as never }),
      notifiers: [notifier],
    });
  const harness: ServiceNowHarness = {
    sandbox,
    notifier,
    logs,
    host: await start(),
    async cycle() {
      const report = await harness.host.runOnce();
      if (report.failures.length) throw new Error(report.failures.map((f) => f.error).join('; '));
      return report;
    },
    async restart() {
      await harness.host.stop();
      harness.host = await start();
    },
    advance(seconds: number) {
      sandbox.admin.advanceClock(seconds);
    },
    async close() {
      await harness.host.stop().catch(() => undefined);
      await sandbox.close();
    },
  };
  return harness;
}
