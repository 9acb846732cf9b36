import { timerDelay } from '../../core/index.js';
import type { ConcurSourceConfig } from './concur-config.js';
import { startConcurSandbox, type ConcurSandbox } from './sandbox/index.js';
import type { FaultProfileName } from './sandbox/index.js';

export interface EmbeddedSandbox {
  readonly sandbox: ConcurSandbox;
  /** The settings that point a source instance at the sandbox. */
  readonly config: Partial<ConcurSourceConfig>;
  close(): Promise<void>;
}

/**
 * Starts a Concur sandbox inside the host (the embedded default of `npm start`), on the real
 * clock so retention behaves as in production, and, every `activitySeconds`, plays an employee
 * or an approver: submits a report, approves one, or sends one back, so the queue visibly moves.
 */
export async function startEmbeddedSandbox(options: NonNullable<ConcurSourceConfig['sandbox']>): Promise<EmbeddedSandbox> {
  const sandbox = await startConcurSandbox({
    seed: options.seed,
    reports: options.reports,
    approvers: options.approvers,
    clock: Date.now(),
    faults: options.faults as FaultProfileName,
  });
  let step = 0;
  const timer =
    options.activitySeconds > 0
      ? setInterval(
          () => {
            const pending = sandbox.admin.state().reports.filter((r) => r.status === 'A_PEND');
            const pick = pending[step % Math.max(1, pending.length)];
            try {
              if (step % 3 === 0 || !pick) sandbox.admin.submit({});
              else if (step % 3 === 1) sandbox.admin.approve(pick.id);
              else sandbox.admin.sendBack(pick.id, 'Please attach the missing receipts.');
            } catch {
              // A report that moved on between the read and the action: next tick picks another.
            }
            step++;
          },
          timerDelay(options.activitySeconds * 1000, 'sandbox.activitySeconds'),
        )
      : undefined;
  timer?.unref();
  return {
    sandbox,
    config: {
      baseUrl: sandbox.baseUrl,
      clientId: sandbox.credentials.clientId,
      clientSecret: sandbox.credentials.clientSecret,
      refreshToken: sandbox.credentials.refreshToken,
      requestToken: sandbox.credentials.requestToken,
      companyId: sandbox.companyId,
    },
    close: async () => {
      if (timer) clearInterval(timer);
      await sandbox.close();
    },
  };
}
