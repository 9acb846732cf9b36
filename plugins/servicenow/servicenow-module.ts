import {
  ApprovalSource,
  Clock,
  ContainerModule,
  CredentialStore,
  IdentityDirectory,
  Logger,
  Metrics,
  SourceState,
  type PluginContext,
} from '../../core/index.js';
import { defaultResilience, resilientFetch } from './client/resilient-fetch.js';
import { ServiceNowAuth } from './client/servicenow-auth.js';
import { ServiceNowTableClient } from './client/table-client.js';
import type { EmbeddedSandbox } from './sandbox-mode.js';
import { ServiceNowApprovalSource } from './servicenow-approval-source.js';
import type { ServiceNowSourceConfig } from './servicenow-config.js';
import { ServiceNowIdentityDirectory } from './servicenow-identity-directory.js';

/**
 * One ServiceNow instance. Binds the source, its identity directory and their Table API client in
 * this instance's own child container; with `sandbox` set, starts an in-process sandbox first and
 * points the instance at it. The sandbox (and fastify) is loaded only then, so a production host
 * never loads its code.
 */
export default function serviceNowModule(context: PluginContext<ServiceNowSourceConfig>): ContainerModule {
  return new ContainerModule(async ({ bind, onDeactivation }) => {
    const embedded = context.config.sandbox ? await startSandbox(context.config.sandbox) : undefined;
    const config: ServiceNowSourceConfig = embedded ? { ...context.config, ...embedded.config } : context.config;
    const { instanceId } = context;
    if (!config.instanceUrl || !config.auth) throw new Error(`servicenow source "${instanceId}": instanceUrl and auth are required without sandbox`);
    const instanceUrl = config.instanceUrl;
    const auth = config.auth;
    bind(ServiceNowTableClient)
      .toResolvedValue(
        (logger: Logger, credentials: CredentialStore, clock: Clock, metrics: Metrics) => {
          const log = logger.child({ source: instanceId });
          const count = (endpoint: string, status: number | 'error') => metrics.sourceCall(instanceId, endpoint, status);
          const fetch = resilientFetch(log, { ...defaultResilience, timeoutMs: config.timeoutSeconds * 1000, maxAttempts: config.maxAttempts }, count);
          // Tokens are shared with every process on the queue, encrypted, under this instance's namespace.
          const tokens = new ServiceNowAuth(instanceUrl, auth, credentials, `source:${instanceId}`, fetch, clock, log);
          return new ServiceNowTableClient(instanceUrl, tokens, fetch, log);
        },
        [Logger, CredentialStore, Clock, Metrics],
      )
      .inSingletonScope();
    bind(ServiceNowApprovalSource)
      .toResolvedValue(
        (client: ServiceNowTableClient, logger: Logger) => new ServiceNowApprovalSource(instanceId, config, client, logger.child({ source: instanceId })),
        [ServiceNowTableClient, Logger],
      )
      .inSingletonScope();
    bind(ApprovalSource).toService(ServiceNowApprovalSource);
    bind(ServiceNowIdentityDirectory)
      .toResolvedValue(
        (client: ServiceNowTableClient, state, logger: Logger) =>
          new ServiceNowIdentityDirectory(instanceId, config, client, state as SourceState, logger.child({ source: instanceId })),
        [ServiceNowTableClient, SourceState, Logger],
      )
      .inSingletonScope();
    bind(IdentityDirectory).toService(ServiceNowIdentityDirectory);
    if (embedded) onDeactivation(ServiceNowApprovalSource, () => embedded.close());
  });
}

/** Loads the sandbox's code on first use only: `import()` here, never a static import in this module. */
async function startSandbox(options: NonNullable<ServiceNowSourceConfig['sandbox']>): Promise<EmbeddedSandbox> {
  const { startEmbeddedSandbox } = await import('./sandbox-mode.js');
  return startEmbeddedSandbox(options);
}
