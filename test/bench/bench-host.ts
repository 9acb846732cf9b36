import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Clock, Notifier } from '../../core/index.js';
import { Host } from '../../core/host/host.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { sandboxSource, type SandboxLike } from '../support/sandbox-deployment.js';

const scratch: string[] = [];

/** A fresh directory for a bench queue file, removed by {@link removeBenchDirs}. */
export function benchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ah-bench-'));
  scratch.push(dir);
  return dir;
}

/** Removes every directory {@link benchDir} made in this process (a 1,000,000-approval SQLite file is 2 GB). */
export function removeBenchDirs(): void {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
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
    /** Serve the host's HTTP server (and the plugin's routes, e.g. the Concur webhook) on a free loopback port once started. */
    http?: boolean;
  } = {},
): Promise<Host> {
  const { source, env } = sandboxSource(sandbox, {
    envPrefix: 'BENCH',
    pollIntervalSeconds: options.pollIntervalSeconds ?? 60,
    sweepIntervalSeconds: options.sweepIntervalSeconds ?? 900,
    config: options.config,
  });
  const deployment = loadDeployment(undefined, {
    env,
    raw: {
      queue: options.queue ?? { adapter: 'sqlite', config: { path: join(benchDir(), 'queue.db') } },
      sources: [source],
      notifiers: [],
      ...(options.http ? { http: { host: '127.0.0.1', port: 0 } } : {}),
    },
  });
  return Host.create(deployment, { logger: pino({ level: 'silent' }), notifiers: options.notifiers ?? [], ...(options.clock ? { clock: options.clock } : {}) });
}
