import { InvalidArgumentError, Option } from 'commander';
import type { CommandApi } from '../../core/index.js';
import { FAULT_PROFILES, startConcurSandbox, type FaultProfileName } from './sandbox/index.js';

const whole =
  (name: string) =>
  (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number >= 0`);
    return n;
  };

/**
 * `approvals-hub sandbox concur`: runs the Concur sandbox as its own process, prints the base URL
 * and credentials as one JSON line, and serves (admin API under /_admin) until SIGINT/SIGTERM.
 */
export default function concurCommands(api: CommandApi): void {
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
