#!/usr/bin/env node
import 'reflect-metadata';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { userInfo } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { moneyText } from '../model/card.js';
import { toPublicJson } from '../model/public-json.js';
import type { QueuedApproval } from '../model/queue-types.js';
import { ConfigError, DEFAULT_CONFIG_FILE, loadDeployment, type Deployment } from './deployment.js';
import { embeddedDeployment } from './embedded.js';
import { Host } from './host.js';
import { createLogger, scrubSecrets } from './logging.js';
import { onceHasDrift, onceSummary } from './once-summary.js';
import { Operations } from './operations.js';
import { PluginCatalog, PluginLoadError, type CatalogEntry } from './plugin-catalog.js';

// Every line this process prints goes through the secret scrubber, as every log line does.
const out = (text: string): void => void process.stdout.write(scrubSecrets(`${text}\n`));
const err = (text: string): void => void process.stderr.write(scrubSecrets(`${text}\n`));

/** How long a failed start may take to close what it opened before the process exits anyway. */
const EXIT_GRACE_MS = 2_000;

/** Exit codes: 0 ok, 1 a run or operation failed, 2 bad configuration or usage. */
/** `run --once --strict`: the cycle ran, but a sweep repaired drift or a source yielded records the host refused. */
const EXIT_DRIFT = 3;

class ExitError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

/** `readOnly`: for a command that only reads the queue; its sources are not composed and their secrets need not be set. */
function readDeployment(configFile: string | undefined, readOnly = false): Deployment {
  if (configFile) return loadDeployment(configFile, { readOnly });
  if (existsSync(DEFAULT_CONFIG_FILE)) return loadDeployment(DEFAULT_CONFIG_FILE, { readOnly });
  return loadDeployment(undefined, { raw: embeddedDeployment(), readOnly });
}

async function withHost<T>(configFile: string | undefined, fn: (host: Host) => Promise<T>, options: { readOnly?: boolean } = {}): Promise<T> {
  const host = await Host.create(readDeployment(configFile, options.readOnly), { logger: createLogger() });
  try {
    return await fn(host);
  } finally {
    await host.stop();
  }
}

function printApproval(a: QueuedApproval): void {
  const amount = moneyText(a.amount) ?? '-';
  const approvers = a.approvers.map((p) => p.email ?? `${p.sourceUserId} (unresolved)`).join(', ');
  out(`${a.key}  ${a.title}  ${amount}  from ${a.requester.name ?? a.requester.email ?? '?'}  → ${approvers}  updated ${a.sourceUpdatedAt}`);
}

/** For commands that only read the queue: no source is started, so no source secret is needed. */
const READ_ONLY = { readOnly: true } as const;

const actorOption = new Option('--actor <name>', 'who makes the change (audit log)').default(userInfo().username);
const configOption = new Option('-c, --config <file>', `deployment file (default: ${DEFAULT_CONFIG_FILE}, else embedded defaults)`);

/** The deployment file a command line names (`-c`/`--config`), else the default file when it exists. */
function configFileIn(argv: readonly string[]): string | undefined {
  const args = argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    if ((arg === '-c' || arg === '--config') && args[i + 1] !== undefined) return args[i + 1];
    if (arg.startsWith('--config=')) return arg.slice('--config='.length);
  }
  return existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined;
}

/**
 * The catalog commands are registered from: the built-in plugins, plus those the deployment's
 * `plugins` setting names. Only that setting is read here (no secrets, no plugin config): a file
 * that cannot be read or parsed adds nothing, and the command itself then reports its problems.
 */
function commandCatalog(argv: readonly string[]): PluginCatalog {
  const catalog = PluginCatalog.builtIn();
  const file = configFileIn(argv);
  if (!file) return catalog;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return catalog;
  }
  const plugins = (raw as { plugins?: unknown } | null)?.plugins;
  if (!Array.isArray(plugins)) return catalog;
  const ignored: string[] = []; // loadDeployment lists these when the command reads the file
  plugins.forEach((location, i) => {
    if (typeof location === 'string' && location !== '') catalog.addLocation(location, dirname(resolve(file)), `plugins[${i}]`, ignored);
  });
  return catalog;
}

/** Where a plugin's commands module is, for messages. */
const commandsFile = (entry: CatalogEntry): string =>
  `plugin "${entry.manifest.id}"${entry.origin ? ` (${entry.origin})` : ''}: commands module ${resolve(entry.dir, entry.manifest.commands ?? '')}`;

/** Adds every plugin's contributed commands (e.g. `sandbox concur`), built-in or named by the deployment's `plugins`. */
async function addPluginCommands(program: Command, argv: readonly string[]): Promise<void> {
  const groups = new Map<string, Command>();
  for (const entry of commandCatalog(argv).all()) {
    let contribute;
    try {
      contribute = await PluginCatalog.loadCommands(entry);
    } catch (error) {
      throw error instanceof PluginLoadError ? new ConfigError([error.message]) : error;
    }
    try {
      contribute?.({
        group: (name, description) => {
          let group = groups.get(name);
          if (!group) {
            group = program.command(name).description(description);
            groups.set(name, group);
          }
          return group;
        },
        withHost: (configFile, fn, options) =>
          withHost(configFile, (host) => fn({ queue: host.queue, lookup: host.lookupService, notifiers: host.notifiers, sources: host.sources }), options),
        out,
      });
    } catch (error) {
      throw new ConfigError([`${commandsFile(entry)} failed to register its commands (${error instanceof Error ? error.message : String(error)})`]);
    }
  }
}

/**
 * Imports every plugin module a deployment would load (each used plugin's entry, every plugin the
 * `plugins` setting names, and their commands modules), so `config validate` fails for a plugin
 * the host could not start. One problem line per module, naming the plugin and the file.
 */
async function checkPluginModules(d: Deployment, catalog: PluginCatalog): Promise<string[]> {
  const entries = new Map<string, CatalogEntry>();
  for (const entry of [d.queue.plugin, ...d.sources.map((s) => s.entry), ...d.notifiers.map((n) => n.entry)]) entries.set(entry.manifest.id, entry);
  for (const entry of catalog.all()) if (entry.origin?.startsWith('plugins[')) entries.set(entry.manifest.id, entry);
  const problems: string[] = [];
  for (const entry of entries.values()) {
    for (const load of [PluginCatalog.load, PluginCatalog.loadCommands]) {
      await load(entry).catch((error: unknown) => problems.push(error instanceof Error ? error.message : String(error)));
    }
  }
  return problems;
}

export function buildProgram(): Command {
  const program = new Command('approvals-hub')
    .description('Brings every pending approval to the approver in chat, from an always-fresh queue.')
    .showHelpAfterError()
    // Usage errors throw a CommanderError (main turns it into exit code 2) instead of exiting 1.
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(scrubSecrets(s)) });

  program
    .command('run')
    .description('poll every source, keep the queue and deliver notifications until stopped (SIGINT/SIGTERM)')
    .addOption(configOption)
    .option('--once', 'run one detection + processing + delivery cycle for every source, then exit')
    .option('--strict', `with --once: exit ${EXIT_DRIFT} when a sweep repaired drift or a source yielded a record the host refused`)
    .action(async (opts: { config?: string; once?: boolean; strict?: boolean }) => {
      if (opts.strict && !opts.once) throw new ExitError('--strict applies to run --once only', 2);
      const logger = createLogger();
      const host = await Host.create(readDeployment(opts.config), { logger });
      if (opts.once) {
        const report = await host.runOnce().finally(() => host.stop());
        for (const line of onceSummary(report)) out(line);
        for (const f of report.failures) err(`source ${f.source} failed: ${f.error}`);
        if (report.failures.length) throw new ExitError(`${report.failures.length} source(s) failed`, 1);
        if (opts.strict && onceHasDrift(report))
          throw new ExitError('drift or refused records (--strict); see the summary above and the warnings logged', EXIT_DRIFT);
        return;
      }
      // Listening before anything is announced: a supervisor that signals as soon as it reads
      // "running" must find the handler in place (a signal during the start stops right after it).
      const signalled = new Promise<string>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      // A start that fails half-way (port in use) closes what it opened, so the process can exit.
      await host.start().catch(async (error: unknown) => {
        await host.stop().catch(() => undefined);
        throw error;
      });
      logger.info({ sources: [...host.sources.keys()], notifiers: [...host.notifiers.keys()] }, 'approvals-hub running');
      logger.info({ signal: await signalled }, 'stopping');
      await host.stop();
    });

  const queue = program.command('queue').description('read and repair the approval queue');
  queue
    .command('list')
    .description('pending approvals, newest first')
    .addOption(configOption)
    .option('--approver <email>', 'only approvals waiting on this person')
    .option('--source <id>', 'only this source instance')
    .option('--json', 'print JSON (stable shape, see README)')
    .action(async (opts: { config?: string; approver?: string; source?: string; json?: boolean }) =>
      withHost(
        opts.config,
        async (host) => {
          const { notBefore } = host.commitContext();
          const rows = opts.approver
            ? await host.queue.listForApprover(opts.approver, { notBefore, source: opts.source })
            : await host.queue.list({ notBefore, source: opts.source });
          if (opts.json) out(JSON.stringify(rows.map(toPublicJson), null, 2));
          else if (rows.length === 0) out('nothing pending');
          else rows.forEach(printApproval);
        },
        READ_ONLY,
      ),
    );
  queue
    .command('show <key>')
    .addOption(configOption)
    .option('--json', 'print JSON')
    .action(async (key: string, opts: { config?: string; json?: boolean }) =>
      withHost(
        opts.config,
        async (host) => {
          const row = await host.queue.get(key);
          if (!row) throw new ExitError(`${key} is not queued`, 1);
          if (opts.json) out(JSON.stringify(toPublicJson(row), null, 2));
          else {
            printApproval(row);
            out(`  status ${row.status}, revision ${row.revision}, queued ${row.queuedAt}`);
            if (row.links.view) out(`  view: ${row.links.view}`);
          }
        },
        READ_ONLY,
      ),
    );
  queue
    .command('remove <key>')
    .description('remove one approval from the queue and close its cards (audit-logged)')
    .addOption(configOption)
    .addOption(actorOption)
    .action(async (key: string, opts: { config?: string; actor: string }) =>
      withHost(opts.config, async (host) => {
        await new Operations(host).remove(key, opts.actor);
        await host.drain();
        out(`removed ${key}`);
      }),
    );
  queue
    .command('resync <key>')
    .description('re-read one approval from its source; removed if no longer pending (audit-logged)')
    .addOption(configOption)
    .addOption(actorOption)
    .action(async (key: string, opts: { config?: string; actor: string }) =>
      withHost(opts.config, async (host) => {
        const r = await new Operations(host).resync(key, opts.actor);
        await host.drain();
        out(`${key}: source says ${r.status}; ${r.queued ? 'queued' : 'not queued'}`);
      }),
    );

  program
    .command('audit')
    .description('compare the queue with each source; --fix repairs every difference (audit-logged)')
    .addOption(configOption)
    .option('--source <id>', 'only this source instance')
    .option('--fix', 'repair the differences')
    .option('--json', 'print JSON')
    .addOption(actorOption)
    .action(async (opts: { config?: string; source?: string; fix?: boolean; json?: boolean; actor: string }) =>
      withHost(opts.config, async (host) => {
        const diffs = await new Operations(host).audit({ source: opts.source, fix: !!opts.fix, actor: opts.actor });
        if (opts.fix) await host.drain();
        if (opts.json) out(JSON.stringify({ differences: diffs, fixed: !!opts.fix }, null, 2));
        else {
          for (const d of diffs) out(`${d.kind.padEnd(8)} ${d.key}  ${d.detail}`);
          out(`${diffs.length} difference(s)${opts.fix && diffs.length ? ', fixed' : ''}`);
        }
      }),
    );

  program
    .command('outbox')
    .description('inspect deliveries')
    .command('list')
    .addOption(configOption)
    .addOption(
      new Option('--state <state>', 'entries in this state').choices(['pending', 'parked', 'inflight', 'delivered', 'superseded', 'dead']).default('dead'),
    )
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; state: 'dead'; json?: boolean }) =>
      withHost(
        opts.config,
        async (host) => {
          const entries = await host.queue.listOutbox(opts.state, 1000);
          if (opts.json) out(JSON.stringify(entries, null, 2));
          else {
            for (const e of entries)
              out(
                `#${e.id} ${e.channel} ${e.action} ${e.approvalKey} r${e.revision} → ${e.approver.email ?? e.approver.sourceUserId}  attempts ${e.attempts}${e.lastError ? `  ${e.lastError}` : ''}`,
              );
            out(`${entries.length} ${opts.state} entr${entries.length === 1 ? 'y' : 'ies'}`);
          }
        },
        READ_ONLY,
      ),
    );

  program
    .command('diagnostics')
    .description(
      'approvers who cannot be reached (no chat identity, lookups failing) and how many approvals wait on each; deprecated source endpoints; push events mode and waiting triggers',
    )
    .addOption(configOption)
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; json?: boolean }) =>
      withHost(
        opts.config,
        async (host) => {
          const rows = await new Operations(host).unreachable();
          const backfill = await host.backfillPending();
          const deprecations = await new Operations(host).deprecations();
          const events = await new Operations(host).events();
          if (opts.json) out(JSON.stringify({ unreachable: rows, backfill, deprecations, events }, null, 2));
          else {
            for (const r of rows) out(`${r.source}  ${r.approver}${r.channel ? ` on ${r.channel}` : ''}  ${r.waiting} waiting  (${r.reason})`);
            out(rows.length ? `${rows.length} approver(s) cannot be reached` : 'every approver with pending approvals can be reached');
            for (const b of backfill)
              out(`${b.source}  backfill: ${b.pending} queued approval(s) still to complete (Concur: line items of a first sync's backlog)`);
            for (const d of deprecations) {
              out(
                `${d.source}  ${d.endpoint}  deprecated, sunset ${d.sunsetAt?.slice(0, 10) ?? d.sunset ?? 'not given'}, first seen ${d.firstSeen}${d.warning ? `: ${d.warning}` : ''}`,
              );
            }
            if (deprecations.length) out(`${deprecations.length} deprecated endpoint(s) still called`);
            for (const e of events) {
              out(
                `${e.source}  push events: ${e.mode === 'events' ? 'healthy, polling as a safety net' : e.mode === 'polling' ? `not trusted, polling at the normal interval (${e.reason})` : e.reason}` +
                  `${e.lastEventAt ? `; last push ${e.lastEventAt}` : ''}; ${e.pendingTriggers} trigger(s) waiting${e.oldestPendingAt ? ` since ${e.oldestPendingAt}` : ''}`,
              );
            }
          }
        },
        READ_ONLY,
      ),
    );

  program
    .command('config')
    .description('deployment file tools')
    .command('validate [file]')
    .description('validate a deployment file and every plugin config in it; prints one line per problem')
    .action(async (file?: string) => {
      const target = file ?? DEFAULT_CONFIG_FILE;
      const builtInProblems: string[] = [];
      const catalog = PluginCatalog.builtIn(builtInProblems);
      if (builtInProblems.length > 0) throw new ConfigError(builtInProblems);
      const d = loadDeployment(target, { catalog });
      const problems = await checkPluginModules(d, catalog);
      if (problems.length > 0) throw new ConfigError(problems);
      out(`${target}: valid (${d.sources.length} source(s), queue ${d.queue.adapter}, notifiers ${d.notifiers.map((n) => n.id).join(', ')})`);
    });

  program
    .command('audit-log')
    .description('manual changes, newest first')
    .addOption(configOption)
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; json?: boolean }) =>
      withHost(
        opts.config,
        async (host) => {
          const rows = await host.queue.listAudit(100);
          if (opts.json) out(JSON.stringify(rows, null, 2));
          else for (const r of rows) out(`${r.at}  ${r.actor}  ${r.action}  ${r.key ?? ''}  ${r.detail ?? ''}`);
        },
        READ_ONLY,
      ),
    );
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    const program = buildProgram();
    await addPluginCommands(program, argv);
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    // Commander has printed the usage problem (or the help asked for) already.
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof ConfigError) {
      for (const p of error.problems) err(p);
      return 2;
    }
    if (error instanceof ExitError) {
      err(error.message);
      return error.code;
    }
    err(`error: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

/**
 * A reader that stops early (`approvals-hub queue list | head -5`) closes the pipe, and the next
 * write fails with EPIPE. Node ignores SIGPIPE and raises an 'error' on the stream instead, which,
 * unhandled, ends the process with a stack trace. Closing the pipe is normal use, so the CLI ends
 * quietly with 0, as a shell tool killed by SIGPIPE leaves no message. A `run` stopped this way is
 * like a kill: every commit is already durable, and delivery resumes on the next start.
 */
function exitQuietlyWhenPipeCloses(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(0);
      throw error;
    });
  }
}

const invokedPath = process.argv[1] ? realpathSync(process.argv[1]) : '';
if (invokedPath === fileURLToPath(import.meta.url)) {
  exitQuietlyWhenPipeCloses();
  process.exitCode = await main(process.argv);
  // A failure has closed what it opened; should a library still hold a handle, exit regardless.
  if (process.exitCode !== 0) setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
}
