import { InvalidArgumentError, Option } from 'commander';
import type { CommandApi } from '../../../core/index.js';
import { FAULT_PROFILES, type FaultProfileName } from './sandbox-faults.js';
import { startServiceNowSandbox, type ServiceNowSandboxOptions } from './servicenow-sandbox.js';

const whole =
  (name: string) =>
  (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number >= 0`);
    return n;
  };

/**
 * Runs a ServiceNow sandbox until SIGINT/SIGTERM: prints `{url, clientId, clientSecret, username,
 * password}` as one JSON line through `out`, then serves (admin API under /_admin). What the
 * `approvals-hub sandbox servicenow` command runs; callable on its own too.
 */
export async function serveServiceNowSandbox(options: ServiceNowSandboxOptions, out: (line: string) => void): Promise<void> {
  const sandbox = await startServiceNowSandbox(options);
  const { clientId, clientSecret, username, password } = sandbox.credentials;
  out(JSON.stringify({ url: sandbox.url, clientId, clientSecret, username, password }));
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await sandbox.close();
}

/**
 * `approvals-hub sandbox servicenow`: a command contribution for the ServiceNow plugin's manifest to
 * register (the plugin does not exist yet, so nothing registers it today).
 */
export function serviceNowSandboxCommand(api: CommandApi): void {
  api
    .group('sandbox', 'run a local stand-in of a source system, for trials, tests and benchmarks')
    .command('servicenow')
    .description('a local ServiceNow instance (Table API, /oauth_token.do) with seeded users, requested items, changes and approvals')
    .option('--port <n>', 'port on 127.0.0.1 (0 = any free port)', whole('--port'), 8788)
    .option('--requested-items <n>', 'requested items to seed', whole('--requested-items'), 8)
    .option('--change-requests <n>', 'change requests to seed', whole('--change-requests'), 4)
    .option('--approvers <n>', 'approvers among the users', whole('--approvers'), 4)
    .option('--seed <n>', 'seed of the generated data and fault draws', whole('--seed'), 1)
    .addOption(new Option('--faults <profile>', 'fault profile').choices(Object.keys(FAULT_PROFILES)).default('none'))
    .action(async (opts: { port: number; requestedItems: number; changeRequests: number; approvers: number; seed: number; faults: string }) =>
      serveServiceNowSandbox(
        {
          port: opts.port,
          requestedItems: opts.requestedItems,
          changeRequests: opts.changeRequests,
          approvers: opts.approvers,
          seed: opts.seed,
          faults: opts.faults as FaultProfileName,
          clock: Date.now(),
        },
        (line) => api.out(line),
      ),
    );
}
