import {
  ApprovalSource,
  Clock,
  ContainerModule,
  CredentialStore,
  HttpRoutes,
  IdentityDirectory,
  Logger,
  Metrics,
  SourceState,
  SourceTriggers,
  type PluginContext,
} from '../../core/index.js';
import { resolve } from 'node:path';
import { ConcurClient } from './client/concur-client.js';
import { DeprecationWatch } from './client/deprecation-watch.js';
import { defaultResilience, IDENTITY_BREAKER, resilientFetch } from './client/resilient-fetch.js';
import { ConcurTokenManager } from './client/token-manager.js';
import { ConcurUserClient } from './client/user-client.js';
import { ConcurApprovalSource } from './concur-approval-source.js';
import type { ConcurSourceConfig } from './concur-config.js';
import { ConcurDelegateDirectory } from './concur-delegates.js';
import { ConcurIdentityDirectory } from './concur-identity-directory.js';
import { ApproverConsents } from './consent/approver-consents.js';
import { ConcurActions } from './consent/concur-actions.js';
import { ConsentRoutes, consentPath } from './consent/consent-routes.js';
import type { EmbeddedSandbox } from './sandbox-mode.js';
import { EventAuthenticator, eventsAuthConfig } from './events/event-auth.js';
import { EventRoutes } from './events/event-routes.js';

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
          const identity = deprecations.wrap(resilientFetch(log, identityResilience, IDENTITY_BREAKER, undefined, count));
          return new ConcurClient(tokens, deprecations.wrap(resilientFetch(log, resilience, undefined, undefined, count)), identity, log);
        },
        [Logger, CredentialStore, SourceState, Clock, Metrics],
      )
      .inSingletonScope();
    // Expense delegates (opt-in): one directory, shared by the source (who gets cards) and the actions (who may act).
    bind(ConcurDelegateDirectory)
      .toResolvedValue(
        (client: ConcurClient, state, clock: Clock, logger: Logger) =>
          new ConcurDelegateDirectory(client, state as SourceState, clock, logger.child({ source: context.instanceId }), config.identity.ttlHours * 3_600_000),
        [ConcurClient, SourceState, Clock, Logger],
      )
      .inSingletonScope();
    const delegates = (directory: ConcurDelegateDirectory) => (config.delegates.notify ? directory : undefined);
    const acting = config.actions.length > 0;
    if (acting) bindActing(bind, context.instanceId, config);
    const source = (
      client: ConcurClient,
      logger: Logger,
      state: unknown,
      directory: ConcurDelegateDirectory,
      actions?: ConcurActions,
      consents?: ApproverConsents,
    ) =>
      new ConcurApprovalSource(
        context.instanceId,
        config,
        client,
        logger.child({ source: context.instanceId }),
        state as SourceState,
        actions && consents ? { actions, consents } : undefined,
        delegates(directory),
      );
    if (acting)
      bind(ConcurApprovalSource)
        .toResolvedValue(source, [ConcurClient, Logger, SourceState, ConcurDelegateDirectory, ConcurActions, ApproverConsents])
        .inSingletonScope();
    else
      bind(ConcurApprovalSource)
        .toResolvedValue(
          (client: ConcurClient, logger: Logger, state, directory: ConcurDelegateDirectory) => source(client, logger, state, directory),
          [ConcurClient, Logger, SourceState, ConcurDelegateDirectory],
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
    if (config.events.enabled) bindEvents(bind, context, config);
    if (embedded) onDeactivation(ConcurApprovalSource, () => embedded.close());
  });
}

/**
 * Push events (`events.enabled`): the webhook route Concur's Event Subscription Service posts to.
 * Report events become triggers the core refreshes through the source; identity events send that
 * person's e-mail mapping, and spend-profile events (with `delegates.notify`) their delegate list,
 * for a fresh look-up.
 */
function bindEvents(
  bind: Parameters<ConstructorParameters<typeof ContainerModule>[0]>[0]['bind'],
  context: PluginContext<ConcurSourceConfig>,
  config: ConcurSourceConfig,
): void {
  const { instanceId } = context;
  const events = config.events;
  if (!events.signature.required && events.clientCertificate.mode === 'off') {
    throw new Error(
      `concur source "${instanceId}": events.signature.required is false and events.clientCertificate.mode is off: nothing would check that an event comes from Concur; turn one of them on`,
    );
  }
  const authenticator = new EventAuthenticator(
    eventsAuthConfig({
      signature: { ...events.signature, publicKeyFiles: events.signature.publicKeyFiles.map((f) => resolve(context.baseDir, f)) },
      clientCertificate: events.clientCertificate,
      maxBodyBytes: events.maxBodyBytes,
      maxAgeHours: events.maxAgeHours,
    }),
  );
  bind(EventRoutes)
    .toResolvedValue(
      (triggers: SourceTriggers, directory: ConcurIdentityDirectory, delegates: ConcurDelegateDirectory, logger: Logger, clock: Clock) =>
        new EventRoutes(instanceId, authenticator, triggers, logger.child({ source: instanceId }), clock, async (event) => {
          if (event.kind === 'identity') await directory.forget(event.userId);
          else if (config.delegates.notify) await delegates.forget(event.userId);
        }),
      [SourceTriggers, ConcurIdentityDirectory, ConcurDelegateDirectory, Logger, Clock],
    )
    .inSingletonScope();
  bind(HttpRoutes).toService(EventRoutes);
}

const DEFAULT_AUTHORIZE_URL = 'https://www-us.api.concursolutions.com/oauth2/v0/authorize';

/**
 * Acting as each approver (`actions` configured): their consents in the credential store, the
 * client for their own tokens, the act logic and the consent routes on the host's HTTP server.
 */
function bindActing(bind: Parameters<ConstructorParameters<typeof ContainerModule>[0]>[0]['bind'], instanceId: string, config: ConcurSourceConfig): void {
  const publicUrl = config.consent.publicUrl;
  if (!publicUrl) throw new Error(`concur source "${instanceId}": actions need consent.publicUrl (this host's URL as approvers' browsers reach it)`);
  const prefix = `${publicUrl.replace(/\/+$/, '')}${consentPath(instanceId)}`;
  const configuredOrigins = [config.authBaseUrl, config.baseUrl].filter((u): u is string => u !== undefined);
  bind(ConcurUserClient)
    .toResolvedValue(
      (logger: Logger, metrics: Metrics) => {
        const log = logger.child({ source: instanceId });
        const count = (endpoint: string, status: number | 'error') => metrics.sourceCall(instanceId, endpoint, status);
        const resilience = { ...defaultResilience, timeoutMs: config.timeoutSeconds * 1000, maxAttempts: config.maxAttempts };
        const reads = resilientFetch(log, resilience, undefined, undefined, count);
        // A click is sent once: a retried PATCH could act twice, or fail on a report it already moved.
        const writes = resilientFetch(log, { ...resilience, maxAttempts: 1 }, undefined, undefined, count);
        return new ConcurUserClient({ clientId: config.clientId ?? '', clientSecret: config.clientSecret ?? '', configuredOrigins }, reads, reads, writes);
      },
      [Logger, Metrics],
    )
    .inSingletonScope();
  bind(ApproverConsents)
    .toResolvedValue(
      (credentials: CredentialStore, user: ConcurUserClient, clock: Clock, logger: Logger) =>
        new ApproverConsents(instanceId, credentials, user, clock, logger.child({ source: instanceId }), {
          linkTtlMs: config.consent.linkTtlMinutes * 60_000,
          baseUrl: config.baseUrl,
          configuredOrigins,
        }),
      [CredentialStore, ConcurUserClient, Clock, Logger],
    )
    .inSingletonScope();
  bind(ConcurActions)
    .toResolvedValue(
      (consents: ApproverConsents, user: ConcurUserClient, client: ConcurClient, clock: Clock, logger: Logger, delegates: ConcurDelegateDirectory) =>
        new ConcurActions(
          consents,
          user,
          client,
          config.pendingStatusCodes,
          (state) => `${prefix}/connect?state=${encodeURIComponent(state)}`,
          clock,
          logger.child({ source: instanceId }),
          config.delegates.notify ? delegates : undefined,
        ),
      [ApproverConsents, ConcurUserClient, ConcurClient, Clock, Logger, ConcurDelegateDirectory],
    )
    .inSingletonScope();
  bind(ConsentRoutes)
    .toResolvedValue(
      (consents: ApproverConsents, user: ConcurUserClient, client: ConcurClient, clock: Clock, logger: Logger) =>
        new ConsentRoutes(
          {
            sourceId: instanceId,
            clientId: config.clientId ?? '',
            authorizeUrl: config.consent.authorizeUrl ?? (config.baseUrl ? `${config.baseUrl.replace(/\/+$/, '')}/oauth2/v0/authorize` : DEFAULT_AUTHORIZE_URL),
            tokenBase: config.baseUrl ?? config.authBaseUrl,
            redirectUri: `${prefix}/callback`,
            scopes: config.consent.scopes,
            methods: config.consent.methods,
          },
          consents,
          user,
          client,
          clock,
          logger.child({ source: instanceId }),
        ),
      [ApproverConsents, ConcurUserClient, ConcurClient, Clock, Logger],
    )
    .inSingletonScope();
  bind(HttpRoutes).toService(ConsentRoutes);
}

/** Loads the sandbox's code on first use only: `import()` here, never a static import in this module. */
async function startSandbox(options: NonNullable<ConcurSourceConfig['sandbox']>): Promise<EmbeddedSandbox> {
  const { startEmbeddedSandbox } = await import('./sandbox-mode.js');
  return startEmbeddedSandbox(options);
}
