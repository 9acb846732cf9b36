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
import { ConcurClient } from './client/concur-client.js';
import { DeprecationWatch } from './client/deprecation-watch.js';
import { defaultResilience, identityBreaker, resilientFetch } from './client/resilient-fetch.js';
import { ConcurTokenManager } from './client/token-manager.js';
import { ConcurApprovalSource } from './concur-approval-source.js';
import type { ConcurSourceConfig } from './concur-config.js';
import { ConcurIdentityDirectory } from './concur-identity-directory.js';
import type { EmbeddedSandbox } from './sandbox-mode.js';

/**
 * One Concur company. Binds the source, its identity directory and their client in this
 * instance's own child container; with `sandbox` set, starts an in-process sandbox first and
 * points the instance at it. The sandbox (some 3,500 lines and its own HTTP server) is loaded only
 * then, so a production host never loads its code.
 */
export default function concurModule(context: PluginContext<ConcurSourceConfig>): ContainerModule {
  return new ContainerModule(async ({ bind, onDeactivation }) => {
    const embedded = context.config.sandbox ? await startSandbox(context.config.sandbox) : undefined;
    const config: ConcurSourceConfig = embedded ? { ...context.config, ...embedded.config } : context.config;
    bind(ConcurClient)
      .toResolvedValue(
        (logger: Logger, credentials: CredentialStore, state, clock: Clock, metrics: Metrics) => {
          const log = logger.child({ source: context.instanceId });
          const count = (endpoint: string, status: number | 'error') => metrics.sourceCall(context.instanceId, endpoint, status);
          const resilience = { ...defaultResilience, timeoutMs: config.timeoutSeconds * 1000, maxAttempts: config.maxAttempts };
          const deprecations = new DeprecationWatch(state as SourceState, clock, log, (endpoint) => metrics.sourceDeprecation(context.instanceId, endpoint));
          const tokens = new ConcurTokenManager(
            {
              clientId: config.clientId ?? '',
              clientSecret: config.clientSecret ?? '',
              refreshToken: config.refreshToken,
              requestToken: config.requestToken,
              companyId: config.companyId,
              authBaseUrl: config.authBaseUrl,
              baseUrl: config.baseUrl,
            },
            // Shared with every process on the queue, encrypted; older versions kept it in plain text under SourceState's namespace.
            credentials,
            `source:${context.instanceId}`,
            deprecations.wrap(resilientFetch(log, resilience, undefined, undefined, count)),
            clock,
            log,
          );
          const identityResilience = { ...resilience, timeoutMs: config.identity.timeoutSeconds * 1000, maxAttempts: 2 };
          const identity = deprecations.wrap(resilientFetch(log, identityResilience, identityBreaker(), undefined, count));
          return new ConcurClient(tokens, deprecations.wrap(resilientFetch(log, resilience, undefined, undefined, count)), identity, log);
        },
        [Logger, CredentialStore, SourceState, Clock, Metrics],
      )
      .inSingletonScope();
    bind(ConcurApprovalSource)
      .toResolvedValue(
        (client: ConcurClient, logger: Logger, state) =>
          new ConcurApprovalSource(context.instanceId, config, client, logger.child({ source: context.instanceId }), state as SourceState),
        [ConcurClient, Logger, SourceState],
      )
      .inSingletonScope();
    bind(ApprovalSource).toService(ConcurApprovalSource);
    bind(ConcurIdentityDirectory)
      .toResolvedValue(
        (client: ConcurClient, state, logger: Logger) =>
          new ConcurIdentityDirectory(context.instanceId, config, client, state as SourceState, logger.child({ source: context.instanceId })),
        [ConcurClient, SourceState, Logger],
      )
      .inSingletonScope();
    bind(IdentityDirectory).toService(ConcurIdentityDirectory);
    if (embedded) onDeactivation(ConcurApprovalSource, () => embedded.close());
  });
}

/** Loads the sandbox's code on first use only: `import()` here, never a static import in this module. */
async function startSandbox(options: NonNullable<ConcurSourceConfig['sandbox']>): Promise<EmbeddedSandbox> {
  const { startEmbeddedSandbox } = await import('./sandbox-mode.js');
  return startEmbeddedSandbox(options);
}
