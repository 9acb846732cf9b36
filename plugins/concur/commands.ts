import { InvalidArgumentError, Option } from 'commander';
import type { CommandApi, HostHandle } from '../../core/index.js';
import { ConcurApprovalSource } from './concur-approval-source.js';
import { FAULT_PROFILES, startConcurSandbox, type FaultProfileName } from './sandbox/index.js';

const whole =
  (name: string) =>
  (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number >= 0`);
    return n;
  };

/** The deployment's Concur sources with actions on (stored consents), or the one `--source` names. */
function actingSources(host: HostHandle, id: string | undefined): ConcurApprovalSource[] {
  const concur = [...host.sources.values()].filter((s): s is ConcurApprovalSource => s instanceof ConcurApprovalSource);
  const acting = concur.filter((s) => s.consents !== undefined);
  if (id !== undefined) {
    const named = concur.find((s) => s.id === id);
    if (!named) throw new Error(`no Concur source "${id}" in the deployment (Concur sources: ${concur.map((s) => s.id).join(', ') || 'none'})`);
    if (!named.consents) throw new Error(`Concur source "${id}" has no actions configured, so nobody connects to it (set "actions": ["approve", "sendBack"])`);
    return [named];
  }
  if (acting.length === 0) throw new Error('no Concur source in the deployment has actions configured ("actions": ["approve", "sendBack"])');
  return acting;
}

const emailArg = (value: string): string => {
  const normalised = value.trim().toLowerCase();
  if (!/^[^\s@]+@[^\s@]+$/.test(normalised)) throw new InvalidArgumentError('must be an e-mail address');
  return normalised;
};

/**
 * `approvals-hub consent list`: which approvers connected their Concur account, per Concur source, and when.
 * `approvals-hub consent revoke EMAIL`: forgets that approver's Concur token (every process sharing the
 * queue stops using it at once); their next Approve or Send back asks them to connect again. It does not
 * withdraw the app in Concur: the approver does that in Concur, or it lapses with the refresh token.
 */
function consentCommands(api: CommandApi): void {
  const consent = api.group('consent', "approvers' Concur accounts connected for approving from chat");
  consent
    .command('list')
    .description('list the approvers who connected their Concur account, per Concur source, and when')
    .option('-c, --config <file>', 'deployment file (default: approvals.config.json, else embedded defaults)')
    .option('--source <id>', 'only this Concur source')
    .action(async (opts: { config?: string; source?: string }) =>
      api.withHost(opts.config, async (host) => {
        for (const source of actingSources(host, opts.source)) {
          const entries = await source.consents!.list();
          if (entries.length === 0) api.out(`${source.id}\t(nobody connected)`);
          for (const e of entries) api.out(`${source.id}\t${e.email}\tconnected ${e.connectedAt}\tConcur user ${e.userId}`);
        }
      }),
    );
  consent
    .command('revoke')
    .description("forget one approver's Concur token; their next action asks them to connect again")
    .argument('<email>', "the approver's work e-mail", emailArg)
    .option('-c, --config <file>', 'deployment file (default: approvals.config.json, else embedded defaults)')
    .option('--source <id>', 'only this Concur source')
    .action(async (address: string, opts: { config?: string; source?: string }) =>
      api.withHost(opts.config, async (host) => {
        const forgotten: string[] = [];
        for (const source of actingSources(host, opts.source)) if (await source.consents!.forget(address)) forgotten.push(source.id);
        api.out(forgotten.length ? `forgot the Concur token of ${address} (${forgotten.join(', ')})` : `${address} had not connected a Concur account`);
      }),
    );
}

/**
 * `approvals-hub sandbox concur`: runs the Concur sandbox as its own process, prints the base URL
 * and credentials as one JSON line, and serves (admin API under /_admin) until SIGINT/SIGTERM.
 */
export default function concurCommands(api: CommandApi): void {
  consentCommands(api);
  api
    .group('sandbox', 'run a local stand-in of a source system, for trials, tests and benchmarks')
    .command('concur')
    .description('a local SAP Concur API (v3 reports and entries, OAuth2, Identity v4) with a seeded company')
    .option('--port <n>', 'port on 127.0.0.1 (0 = any free port)', whole('--port'), 8787)
    .option('--reports <n>', 'pending reports to seed', whole('--reports'), 20)
    .option('--approvers <n>', 'approvers in the company', whole('--approvers'), 5)
    .option('--seed <n>', 'seed of the generated data and fault draws', whole('--seed'), 1)
    .addOption(new Option('--faults <profile>', 'fault profile').choices(Object.keys(FAULT_PROFILES)).default('none'))
    .option('--latency-ms <n>', 'answer every API call this many ms late (a realistic Concur, for benchmarks)', whole('--latency-ms'))
    .option('--no-workflow-bumps-last-modified', 'approve/send back/recall leave LastModifiedDate alone (unconfirmed Concur behaviour)')
    .action(
      async (opts: {
        port: number;
        reports: number;
        approvers: number;
        seed: number;
        faults: string;
        latencyMs?: number;
        workflowBumpsLastModified: boolean;
      }) => {
        const sandbox = await startConcurSandbox({
          port: opts.port,
          reports: opts.reports,
          approvers: opts.approvers,
          seed: opts.seed,
          faults:
            opts.latencyMs !== undefined
              ? { ...FAULT_PROFILES[opts.faults as FaultProfileName], latencyMs: opts.latencyMs }
              : (opts.faults as FaultProfileName),
          clock: Date.now(),
          workflowBumpsLastModified: opts.workflowBumpsLastModified,
        });
        api.out(JSON.stringify({ baseUrl: sandbox.baseUrl, companyId: sandbox.companyId, ...sandbox.credentials }));
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await sandbox.close();
      },
    );
}
