/**
 * `approvals-hub/host`: run approvals-hub inside another Node.js program. A thin facade over the
 * classes the CLI uses (the deployment loader, `Host`, `Operations`), so a deployment that
 * `approvals-hub config validate` accepts starts the same way here, and one it refuses is refused
 * with the same problem lines.
 *
 * ```ts
 * import { createHost } from 'approvals-hub/host';
 * const host = await createHost({ deployment: './approvals.config.json' });
 * const report = await host.runOnce();        // or: await host.start(); … await host.stop();
 * console.log(report.summary.join('\n'));
 * console.log(await host.lookup.waitingOn('ada@example.com'));
 * await host.stop();
 * ```
 */
import 'reflect-metadata';
import type { Registry } from 'prom-client';
import type { ApprovalLookup } from '../contracts/approval-lookup.js';
import type { ApprovalQueue } from '../contracts/approval-queue.js';
import type { ApprovalSource } from '../contracts/approval-source.js';
import type { Clock } from '../contracts/clock.js';
import type { Logger } from '../contracts/logger.js';
import type { Notifier } from '../contracts/notifier.js';
import type { AuditRecord, QueuedApproval } from '../model/queue-types.js';
import { loadDeployment, type Deployment } from './deployment.js';
import { Host, type OnceReport } from './host.js';
import { createLogger } from './logging.js';
import { onceSummary } from './once-summary.js';
import { Operations, type AuditDifference, type UnreachableApprover } from './operations.js';

export { ConfigError, DEFAULT_CONFIG_FILE, deploymentSchema, type Deployment, type HttpSettings, type Listener } from './deployment.js';
export { embeddedDeployment } from './embedded.js';
export { onceSummary } from './once-summary.js';
export type { OnceReport } from './host.js';
export type { CycleReport } from '../pipeline/source-runner.js';
export type { DrainReport } from '../pipeline/outbox-worker.js';
export type { ReminderReport } from '../pipeline/reminder-scheduler.js';
export type { AuditDifference, UnreachableApprover } from './operations.js';

/** The deployment file's content as an object (see the README's deployment reference). */
export type DeploymentDocument = Record<string, unknown>;

/** The pino log levels, lowest first. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
const LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

/**
 * A logger the host writes to: a pino logger (the core `Logger` contract is pino's), or anything
 * with pino's `(fields, message)` methods (bunyan, a pino-compatible wrapper). A missing method
 * falls back to `info`. Every line passes the host's redaction and secret scrubbing first, so a
 * secret the deployment resolved never reaches it.
 */
export interface LoggerLike {
  info(fields: object, message?: string): void;
  trace?(fields: object, message?: string): void;
  debug?(fields: object, message?: string): void;
  warn?(fields: object, message?: string): void;
  error?(fields: object, message?: string): void;
  fatal?(fields: object, message?: string): void;
  /** A pino level name; used as the host's level when `logLevel` is not given. */
  level?: string;
}

export interface HostSettings {
  /**
   * A deployment file path, or the deployment as an object in the file's JSON shape (it is copied,
   * never changed). Validated as `approvals-hub config validate` validates; a bad one rejects with
   * a {@link ConfigError} whose `problems` are the lines the CLI prints.
   */
  readonly deployment: string | DeploymentDocument;
  /** Where a deployment object's relative paths resolve (plugins, SQLite file, secret files). Default: the working directory. A file's are relative to its folder. */
  readonly baseDir?: string;
  /** Where `{"env": "NAME"}` secret references are read. Default: `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** Where log lines go. Default: JSON lines on standard error, as the CLI logs. */
  readonly logger?: LoggerLike;
  /** Default: the logger's own `level`, else `LOG_LEVEL`, else `info`. */
  readonly logLevel?: LogLevel;
  /**
   * A prom-client registry the host's metrics register on (`approvals_hub_*`), e.g. the one your
   * application already serves. One host per registry at a time: `stop()` removes them again.
   * Process metrics are left to the application. Default: a registry of the host's own.
   */
  readonly registry?: Registry;
  /** Default: the system clock. */
  readonly clock?: Clock;
  /** Notifiers to run besides the deployment's (ids must not collide). */
  readonly notifiers?: readonly Notifier[];
  /** Sources to run besides the deployment's, polled every 60 s by `start()`. */
  readonly sources?: readonly ApprovalSource[];
}

/** {@link OnceReport} with the lines `approvals-hub run --once` prints for it. */
export interface OnceSummary extends OnceReport {
  readonly summary: readonly string[];
}

/** The operator's changes are audit-logged under `actor`. */
export interface ActorOptions {
  readonly actor: string;
}

/**
 * Validates a deployment exactly as the CLI does and returns it with secrets resolved and every
 * plugin found. Throws a {@link ConfigError} listing every problem.
 */
export function validateDeployment(deployment: string | DeploymentDocument, options: { baseDir?: string; env?: NodeJS.ProcessEnv } = {}): Deployment {
  if (typeof deployment === 'string') return loadDeployment(deployment, { env: options.env });
  if (typeof deployment !== 'object' || deployment === null || Array.isArray(deployment)) {
    throw new TypeError('deployment must be a file path or a deployment object');
  }
  return loadDeployment(undefined, { raw: structuredClone(deployment), env: options.env, baseDir: options.baseDir });
}

/** Builds a host from a deployment: loads every plugin and opens the queue. Nothing runs until `start()` or `runOnce()`. */
export async function createHost(settings: HostSettings): Promise<ApprovalsHost> {
  const deployment = validateDeployment(settings.deployment, settings);
  const logger = settings.logger ? forwardingLogger(settings.logger, settings.logLevel) : createLogger({ level: settings.logLevel });
  const host = await Host.create(deployment, {
    logger,
    clock: settings.clock,
    notifiers: settings.notifiers,
    sources: settings.sources,
    registry: settings.registry,
  });
  return new ApprovalsHost(host, settings.registry !== undefined);
}

/**
 * A host built by {@link createHost}. Use either `runOnce()` (a scheduler's job) or `start()`
 * (a long-running service), and `stop()` once at the end in both cases.
 */
export class ApprovalsHost {
  private stopping: Promise<void> | undefined;
  private readonly operations: Operations;

  /** @internal Use {@link createHost}. */
  constructor(
    private readonly host: Host,
    private readonly sharedRegistry: boolean,
  ) {
    this.operations = new Operations(host);
  }

  /** The validated deployment, secrets resolved: do not log it. */
  get deployment(): Deployment {
    return this.host.deployment;
  }

  /** "What is waiting on me?": pending, unexpired approvals per approver, read from the queue only. */
  get lookup(): ApprovalLookup {
    return this.host.lookupService;
  }

  /** The queue itself, for reads (`list`, `get`, `listOutbox`, `listAudit`). Change it through the operations below. */
  get queue(): ApprovalQueue {
    return this.host.queue;
  }

  /** The prom-client registry holding the host's metrics. */
  get registry(): Registry {
    return this.host.metrics.registry;
  }

  get sourceIds(): string[] {
    return [...this.host.sources.keys()];
  }

  get notifierIds(): string[] {
    return [...this.host.notifiers.keys()];
  }

  /** The public HTTP listener's URL once `start()` opened it (a deployment `http` block or a plugin's routes). */
  get url(): string | undefined {
    return this.host.url;
  }

  /** The admin listener's URL (`http.admin`) once started. */
  get adminUrl(): string | undefined {
    return this.host.adminUrl;
  }

  /** Pending approvals waiting on `email`, newest first (same as `queue list --approver`). */
  waitingOn(email: string, options?: { source?: string; limit?: number }): Promise<QueuedApproval[]> {
    return this.lookup.waitingOn(email, options);
  }

  /**
   * Starts the HTTP server (when configured or a plugin contributes routes), a detection loop
   * per source and the delivery, reminder and purge timers. A start that fails stops the host.
   */
  async start(): Promise<void> {
    this.assertRunning();
    await this.host.start().catch(async (error: unknown) => {
      await this.stop().catch(() => undefined);
      throw error;
    });
  }

  /**
   * One detection + processing + reminder + delivery cycle for every source, as `run --once`.
   * A failed source does not reject: it is in `failures`, and the CLI would exit 1.
   */
  async runOnce(): Promise<OnceSummary> {
    this.assertRunning();
    const report = await this.host.runOnce();
    return { ...report, summary: onceSummary(report) };
  }

  /** Removes one approval from the queue and closes its cards (`queue remove`). Rejects when it is not queued. */
  async remove(key: string, options: ActorOptions): Promise<QueuedApproval> {
    this.assertRunning();
    const row = await this.operations.remove(key, options.actor);
    await this.host.drain();
    return row;
  }

  /** Re-reads one approval from its source: updated if still pending, removed otherwise (`queue resync`). */
  async resync(key: string, options: ActorOptions): Promise<{ status: string; queued: boolean }> {
    this.assertRunning();
    const result = await this.operations.resync(key, options.actor);
    await this.host.drain();
    return result;
  }

  /** Compares the queue with each source (`audit`); with `fix`, repairs every difference. */
  async audit(options: ActorOptions & { source?: string; fix?: boolean }): Promise<AuditDifference[]> {
    this.assertRunning();
    const differences = await this.operations.audit({ source: options.source, fix: !!options.fix, actor: options.actor });
    if (options.fix) await this.host.drain();
    return differences;
  }

  /** Approvers who cannot be reached, with how many approvals wait on each (`diagnostics`). */
  unreachable(): Promise<UnreachableApprover[]> {
    this.assertRunning();
    return this.operations.unreachable();
  }

  /** Manual changes, newest first (`audit-log`). */
  auditLog(limit = 100): Promise<AuditRecord[]> {
    this.assertRunning();
    return this.host.queue.listAudit(limit);
  }

  /**
   * Graceful stop: loops stop, deliveries in hand finish, servers and the queue close, and metrics
   * leave a shared registry. Safe to call more than once; later calls wait for the first.
   */
  stop(): Promise<void> {
    this.stopping ??= this.host.stop().finally(() => {
      if (this.sharedRegistry) this.host.metrics.unregister();
    });
    return this.stopping;
  }

  private assertRunning(): void {
    if (this.stopping) throw new Error('this approvals-hub host is stopped; create another with createHost()');
  }
}

/**
 * A pino logger with the host's redaction and secret scrubbing whose lines go to `target`:
 * `{ level, time, msg, ...fields }` becomes `target[level](fields, msg)`.
 */
function forwardingLogger(target: LoggerLike, level: LogLevel | undefined): Logger {
  const targetLevel = LEVELS.find((l) => l === target.level);
  return createLogger({
    level: level ?? targetLevel ?? (process.env.LOG_LEVEL as LogLevel | undefined) ?? 'info',
    destination: {
      write(line: string): void {
        const { level: number, time: _time, msg, ...fields } = JSON.parse(line) as { level: number; time?: unknown; msg?: string };
        const name = LEVELS[Math.min(5, Math.max(0, Math.floor(number / 10) - 1))]!;
        const method = target[name] ?? target.info;
        method.call(target, fields, msg);
      },
    },
  });
}
