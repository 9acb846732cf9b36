#!/usr/bin/env node
import 'reflect-metadata';
import { existsSync, realpathSync } from 'node:fs';
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
import { Operations } from './operations.js';
import { PluginCatalog } from './plugin-catalog.js';

// Every line this process prints goes through the secret scrubber, as every log line does.
const out = (text: string): void => void process.stdout.write(scrubSecrets(`${text}\n`));
const err = (text: string): void => void process.stderr.write(scrubSecrets(`${text}\n`));

/** How long a failed start may take to close what it opened before the process exits anyway. */
const EXIT_GRACE_MS = 2_000;

/** Exit codes: 0 ok, 1 a run or operation failed, 2 bad configuration or usage. */
class ExitError extends Error {
  constructor(message: string, readonly code: number) {
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

/** Adds every built-in plugin's contributed commands (e.g. `sandbox concur`). */
async function addPluginCommands(program: Command): Promise<void> {
  const groups = new Map<string, Command>();
  for (const entry of PluginCatalog.builtIn().all()) {
    const contribute = await PluginCatalog.loadCommands(entry);
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
  }
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
    .action(async (opts: { config?: string; once?: boolean }) => {
      const logger = createLogger();
      const host = await Host.create(readDeployment(opts.config), { logger });
      if (opts.once) {
        const report = await host.runOnce().finally(() => host.stop());
        for (const c of report.cycles) {
          out(`${c.source}: ${c.committed.inserted} new, ${c.committed.updated} updated, ${c.committed.completed} completed, ${c.purged} expired${c.swept ? ', swept' : ''}`);
        }
        if (report.reminders) out(`reminders: ${report.reminders.due} due, ${report.reminders.scheduled} messages owed`);
        out(`delivered ${report.delivery.delivered}, retrying ${report.delivery.retried}, dead ${report.delivery.dead}`);
        for (const f of report.failures) err(`source ${f.source} failed: ${f.error}`);
        if (report.failures.length) throw new ExitError(`${report.failures.length} source(s) failed`, 1);
        return;
      }
      // A start that fails half-way (port in use) closes what it opened, so the process can exit.
      await host.start().catch(async (error: unknown) => {
        await host.stop().catch(() => undefined);
        throw error;
      });
      logger.info({ sources: [...host.sources.keys()], notifiers: [...host.notifiers.keys()] }, 'approvals-hub running');
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          logger.info({ signal }, 'stopping');
          resolve();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
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
      withHost(opts.config, async (host) => {
        const { notBefore } = host.commitContext();
        const rows = opts.approver
          ? await host.queue.listForApprover(opts.approver, { notBefore, source: opts.source })
          : await host.queue.list({ notBefore, source: opts.source });
        if (opts.json) out(JSON.stringify(rows.map(toPublicJson), null, 2));
        else if (rows.length === 0) out('nothing pending');
        else rows.forEach(printApproval);
      }, READ_ONLY),
    );
  queue
    .command('show <key>')
    .addOption(configOption)
    .option('--json', 'print JSON')
    .action(async (key: string, opts: { config?: string; json?: boolean }) =>
      withHost(opts.config, async (host) => {
        const row = await host.queue.get(key);
        if (!row) throw new ExitError(`${key} is not queued`, 1);
        if (opts.json) out(JSON.stringify(toPublicJson(row), null, 2));
        else {
          printApproval(row);
          out(`  status ${row.status}, revision ${row.revision}, queued ${row.queuedAt}`);
          if (row.links.view) out(`  view: ${row.links.view}`);
        }
      }, READ_ONLY),
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
    .addOption(new Option('--state <state>', 'entries in this state').choices(['pending', 'parked', 'inflight', 'delivered', 'superseded', 'dead']).default('dead'))
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; state: 'dead'; json?: boolean }) =>
      withHost(opts.config, async (host) => {
        const entries = await host.queue.listOutbox(opts.state, 1000);
        if (opts.json) out(JSON.stringify(entries, null, 2));
        else {
          for (const e of entries) out(`#${e.id} ${e.channel} ${e.action} ${e.approvalKey} r${e.revision} → ${e.approver.email ?? e.approver.sourceUserId}  attempts ${e.attempts}${e.lastError ? `  ${e.lastError}` : ''}`);
          out(`${entries.length} ${opts.state} entr${entries.length === 1 ? 'y' : 'ies'}`);
        }
      }, READ_ONLY),
    );

  program
    .command('diagnostics')
    .description('approvers who cannot be reached (no chat identity, lookups failing) and how many approvals wait on each')
    .addOption(configOption)
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; json?: boolean }) =>
      withHost(opts.config, async (host) => {
        const rows = await new Operations(host).unreachable();
        if (opts.json) out(JSON.stringify({ unreachable: rows }, null, 2));
        else {
          for (const r of rows) out(`${r.source}  ${r.approver}${r.channel ? ` on ${r.channel}` : ''}  ${r.waiting} waiting  (${r.reason})`);
          out(rows.length ? `${rows.length} approver(s) cannot be reached` : 'every approver with pending approvals can be reached');
        }
      }, READ_ONLY),
    );

  program
    .command('config')
    .description('deployment file tools')
    .command('validate [file]')
    .description('validate a deployment file and every plugin config in it; prints one line per problem')
    .action((file?: string) => {
      const target = file ?? DEFAULT_CONFIG_FILE;
      const d = loadDeployment(target);
      out(`${target}: valid (${d.sources.length} source(s), queue ${d.queue.adapter}, notifiers ${d.notifiers.map((n) => n.id).join(', ')})`);
    });

  program
    .command('audit-log')
    .description('manual changes, newest first')
    .addOption(configOption)
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; json?: boolean }) =>
      withHost(opts.config, async (host) => {
        const rows = await host.queue.listAudit(100);
        if (opts.json) out(JSON.stringify(rows, null, 2));
        else for (const r of rows) out(`${r.at}  ${r.actor}  ${r.action}  ${r.key ?? ''}  ${r.detail ?? ''}`);
      }, READ_ONLY),
    );
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    const program = buildProgram();
    await addPluginCommands(program);
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

const invokedPath = process.argv[1] ? realpathSync(process.argv[1]) : '';
if (invokedPath === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv);
  // A failure has closed what it opened; should a library still hold a handle, exit regardless.
  if (process.exitCode !== 0) setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
}
