import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Clock, Notifier } from '../../core/index.js';
import { Host } from '../../core/host/host.js';
import { loadDeployment } from '../../core/host/deployment.js';

export interface SandboxLike {
  readonly baseUrl: string;
  readonly companyId: string;
  readonly credentials: { readonly clientId: string; readonly clientSecret: string; readonly refreshToken: string };
}

/** A host with the real Concur plugin pointed at a sandbox (in this process or another). */
export async function hostOnSandbox(
  sandbox: SandboxLike,
  options: {
    pollIntervalSeconds?: number;
    sweepIntervalSeconds?: number;
    queue?: { adapter: string; config: Record<string, unknown> };
    notifiers?: Notifier[];
    clock?: Clock;
    config?: Record<string, unknown>;
  } = {},
): Promise<Host> {
  const env = { BENCH_SECRET: sandbox.credentials.clientSecret, BENCH_TOKEN: sandbox.credentials.refreshToken };
  const deployment = loadDeployment(undefined, {
    env,
    raw: {
      queue: options.queue ?? { adapter: 'sqlite', config: { path: join(mkdtempSync(join(tmpdir(), 'ah-bench-')), 'queue.db') } },
      sources: [
        {
          id: 'acme',
          plugin: 'concur',
          pollIntervalSeconds: options.pollIntervalSeconds ?? 60,
          sweepIntervalSeconds: options.sweepIntervalSeconds ?? 900,
          config: {
            baseUrl: sandbox.baseUrl,
            clientId: sandbox.credentials.clientId,
            clientSecret: { env: 'BENCH_SECRET' },
            refreshToken: { env: 'BENCH_TOKEN' },
            companyId: sandbox.companyId,
            ...options.config,
          },
        },
      ],
      notifiers: [],
    },
  });
  return Host.create(deployment, { logger: pino({ level: 'silent' }), notifiers: options.notifiers ?? [], ...(options.clock ? { clock: options.clock } : {}) });
}
