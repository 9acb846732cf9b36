import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Host } from '../../core/host/host.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { createLogger } from '../../core/host/logging.js';
import { RecordingNotifier } from '../../core/testing/index.js';
import { startConcurSandbox, type ConcurSandbox, type ConcurSandboxOptions } from '../../plugins/concur/sandbox/index.js';
import { SMALL_COMPANY, sandboxSource } from './sandbox-deployment.js';

export const SOURCE = 'acme';
const DAY_S = 86_400;

export interface ConcurHarness {
  readonly sandbox: ConcurSandbox;
  readonly notifier: RecordingNotifier;
  /** Every log line the host wrote, as written. */
  readonly logs: string[];
  readonly dbPath: string;
  host: Host;
  /** One detection + processing + delivery cycle; throws if the source failed. */
  cycle(): Promise<Awaited<ReturnType<Host['runOnce']>>>;
  /** Stops the host and starts a new one on the same database (a restart). */
  restart(): Promise<void>;
  /** Moves the sandbox clock, which is also the host's clock. */
  advance(seconds: number): void;
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly sandbox?: ConcurSandboxOptions;
  readonly config?: Record<string, unknown>;
  readonly sweepIntervalSeconds?: number;
  /** Where NextPage and every API call go, if not straight to the sandbox (e.g. a proxy). */
  readonly baseUrl?: (sandbox: ConcurSandbox) => string;
  /** Serve the host's HTTP API on a free loopback port (start it with `host.start()`). */
  readonly http?: boolean;
  /** Deployment notifiers besides the recorder (e.g. Slack), and the env their secret references read. */
  readonly notifiers?: readonly Record<string, unknown>[];
  readonly env?: Readonly<Record<string, string>>;
  /** Configure the sandbox's company request token as the fallback grant. */
  readonly requestToken?: boolean;
}

/**
 * A host with the real Concur plugin and a real SQLite queue, talking HTTP on loopback to a
 * Concur sandbox whose clock is the host's clock. Only the chat channel is a recorder.
 */
export async function concurHarness(options: HarnessOptions = {}): Promise<ConcurHarness> {
  const sandbox = await startConcurSandbox({ ...SMALL_COMPANY, ...options.sandbox });
  const dbPath = join(mkdtempSync(join(tmpdir(), 'ah-concur-')), 'queue.db');
  const notifier = new RecordingNotifier('chat');
  const logs: string[] = [];
  const clock = { now: () => new Date(sandbox.admin.now()) };
  const concur = sandboxSource(sandbox, {
    id: SOURCE,
    pollIntervalSeconds: 60,
    sweepIntervalSeconds: options.sweepIntervalSeconds ?? 900,
    baseUrl: options.baseUrl?.(sandbox),
    requestToken: options.requestToken,
    config: { timeoutSeconds: 1, maxAttempts: 3, identity: { timeoutSeconds: 1 }, ...options.config },
  });
  const env = { ...concur.env, ...options.env };
  const raw = {
    queue: { adapter: 'sqlite', config: { path: dbPath } },
    sources: [concur.source],
    notifiers: options.notifiers ?? [],
    ...(options.http ? { http: { host: '127.0.0.1', port: 0 } } : {}),
  };
  const start = () =>
    Host.create(loadDeployment(undefined, { raw: structuredClone(raw), env }), {
      clock,
      logger: createLogger({ level: 'debug', destination: { write: (line: string) => void logs.push(line) } as never }),
      notifiers: [notifier],
    });
  const harness: ConcurHarness = {
    sandbox,
    notifier,
    logs,
    dbPath,
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

export const days = (n: number): number => n * DAY_S;
