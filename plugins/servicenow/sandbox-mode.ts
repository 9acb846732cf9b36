import { timerDelay } from '../../core/index.js';
import type { ServiceNowSourceConfig } from './servicenow-config.js';
import { startServiceNowSandbox, type FaultProfileName, type ServiceNowSandbox } from './sandbox/index.js';

export interface EmbeddedSandbox {
  readonly sandbox: ServiceNowSandbox;
  /** The settings that point a source instance at the sandbox. */
  readonly config: Partial<ServiceNowSourceConfig>;
  close(): Promise<void>;
}

/**
 * Starts a ServiceNow sandbox inside the host (`"sandbox": {…}` in a deployment), on the real clock
 * so retention behaves as in production, and, every `activitySeconds`, plays a user: orders an item
 * (a new approval), approves one, or rejects one, so the queue visibly moves. The source signs in
 * with the client-credentials grant, as a production instance on Washington DC or later would.
 */
export async function startEmbeddedSandbox(options: NonNullable<ServiceNowSourceConfig['sandbox']>): Promise<EmbeddedSandbox> {
  const changes = Math.floor(options.approvals / 3);
  const sandbox = await startServiceNowSandbox({
    seed: options.seed,
    requestedItems: options.approvals - changes,
    changeRequests: changes,
    clock: Date.now(),
    faults: options.faults as FaultProfileName,
  });
  let step = 0;
  const timer =
    options.activitySeconds > 0
      ? setInterval(
          () => {
            const pending = sandbox.admin.approvals('requested');
            const pick = pending[step % Math.max(1, pending.length)];
            try {
              if (step % 3 === 0 || !pick) sandbox.admin.createApprovals({ count: 1 });
              else if (step % 3 === 1) sandbox.admin.approve(pick.sys_id!, 'Approved.');
              else sandbox.admin.reject(pick.sys_id!, 'Not this quarter.');
            } catch {
              // A record that moved on between the read and the action: the next tick picks another.
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
      instanceUrl: sandbox.url,
      auth: { type: 'oauth', clientId: sandbox.credentials.clientId, clientSecret: sandbox.credentials.clientSecret, grant: 'client_credentials' },
    },
    close: async () => {
      if (timer) clearInterval(timer);
      await sandbox.close();
    },
  };
}
