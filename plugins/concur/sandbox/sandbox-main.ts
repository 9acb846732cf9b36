import { parseArgs } from 'node:util';
import { startConcurSandbox } from './concur-sandbox.js';
import type { FaultProfileName } from './sandbox-faults.js';

/**
 * Runs the sandbox as its own process, for `npm start` setups and for drivers in another process:
 *
 *   node dist/plugins/concur/sandbox/sandbox-main.js --port 8787 --seed 1 --reports 20 --faults flaky
 *
 * Prints one JSON line `{baseUrl, companyId, clientId, clientSecret, refreshToken, requestToken}`
 * on stdout once listening, then serves until SIGINT or SIGTERM. The admin API is under /_admin.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      seed: { type: 'string', default: '1' },
      reports: { type: 'string' },
      approvers: { type: 'string' },
      employees: { type: 'string' },
      faults: { type: 'string' },
      clock: { type: 'string' },
      'workflow-keeps-last-modified': { type: 'boolean', default: false },
    },
  });
  const int = (name: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`--${name} must be a whole number >= 0`);
    return n;
  };
  const reports = int('reports', values.reports);
  const approvers = int('approvers', values.approvers);
  const employees = int('employees', values.employees);
  const sandbox = await startConcurSandbox({
    host: values.host,
    port: int('port', values.port) ?? 0,
    seed: int('seed', values.seed) ?? 1,
    ...(reports !== undefined ? { reports } : {}),
    ...(approvers !== undefined ? { approvers } : {}),
    ...(employees !== undefined ? { employees } : {}),
    ...(values.faults !== undefined ? { faults: values.faults as FaultProfileName } : {}),
    ...(values.clock !== undefined ? { clock: values.clock } : {}),
    workflowBumpsLastModified: !values['workflow-keeps-last-modified'],
  });
  process.stdout.write(`${JSON.stringify({ baseUrl: sandbox.baseUrl, companyId: sandbox.companyId, ...sandbox.credentials })}\n`);
  const stop = (): void => {
    void sandbox.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`concur sandbox: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
