import { InvalidArgumentError, Option } from 'commander';
import type { CommandApi, HostHandle } from '../../core/index.js';
import { ConcurEventsClient, EXPENSE_REPORT_TOPIC, type WebhookSubscription } from './client/events-client.js';
import { ConcurApprovalSource } from './concur-approval-source.js';
import type { ConcurSourceConfig } from './concur-config.js';
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

/** The deployment's Concur sources, or the one `--source` names. */
function concurSources(host: HostHandle, id: string | undefined): ConcurApprovalSource[] {
  const concur = [...host.sources.values()].filter((s): s is ConcurApprovalSource => s instanceof ConcurApprovalSource);
  if (id === undefined) {
    if (concur.length === 0) throw new Error('the deployment has no Concur source');
    return concur;
  }
  const named = concur.find((s) => s.id === id);
  if (!named) throw new Error(`no Concur source "${id}" in the deployment (Concur sources: ${concur.map((s) => s.id).join(', ') || 'none'})`);
  return [named];
}

/** The one Concur source a subscription command changes: `--source`, or the only one there is. */
function oneConcurSource(host: HostHandle, id: string | undefined): ConcurApprovalSource {
  const sources = concurSources(host, id);
  if (sources.length > 1) throw new Error(`the deployment has several Concur sources (${sources.map((s) => s.id).join(', ')}): name one with --source`);
  return sources[0] as ConcurApprovalSource;
}

/**
 * Where Concur should push this instance's events: `<events.publicUrl or consent.publicUrl>/concur/<instance id>/events`.
 * `events.publicUrl` is read defensively: the config schema may not have it (yet).
 */
export function eventsUrl(sourceId: string, config: ConcurSourceConfig): string | undefined {
  const events = (config as { readonly events?: unknown }).events;
  const fromEvents = typeof events === 'object' && events !== null ? (events as { publicUrl?: unknown }).publicUrl : undefined;
  const base = typeof fromEvents === 'string' && fromEvents !== '' ? fromEvents : config.consent?.publicUrl;
  if (!base) return undefined;
  return `${base.replace(/\/+$/, '')}/concur/${encodeURIComponent(sourceId)}/events`;
}

/**
 * The default subscription id of an instance: `approvals-hub.<instance id>.<first 8 of the client id>`, in the
 * alphabet ESS allows. Subscription ids are unique across all of Concur, so the app's client id keeps two
 * deployments with the same instance id apart; it is deterministic, so `subscribe` stays idempotent.
 */
export function defaultSubscriptionId(sourceId: string, clientId: string): string {
  const clean = (v: string) => v.toLowerCase().replace(/[^a-z0-9.-]+/g, '-');
  return `approvals-hub.${clean(sourceId)}.${clean(clientId)
    .replace(/[^a-z0-9]/g, '')
    .slice(0, 8)}`;
}

const subscriptionIdArg = (value: string): string => {
  if (!/^[a-z0-9.-]+$/.test(value)) throw new InvalidArgumentError('must be lower-case letters, digits, "." or "-" (what ESS allows)');
  return value;
};

const regexArg = (value: string): string => {
  try {
    new RegExp(value);
  } catch {
    throw new InvalidArgumentError('must be a regular expression on the event type (".*" = every event)');
  }
  return value;
};

function eventsClient(source: ConcurApprovalSource): ConcurEventsClient {
  const config = source.settings;
  if (!config.clientId) throw new Error(`Concur source "${source.id}" has no clientId configured: ESS needs the app's client credentials`);
  if (!config.clientSecret) {
    throw new Error(`Concur source "${source.id}" has no clientSecret configured: ESS needs an App token from the client_credentials grant`);
  }
  return new ConcurEventsClient({ clientId: config.clientId, clientSecret: config.clientSecret, authBaseUrl: config.authBaseUrl, baseUrl: config.baseUrl });
}

const describeSubscription = (s: WebhookSubscription): string => `${s.id}\ttopic ${s.topic}\tfilter ${s.filter ?? '.*'}\t-> ${s.webHookConfig.endpoint}`;

/**
 * `approvals-hub concur events status|subscribe|unsubscribe`: Concur's Event Subscription Service
 * for a Concur source (docs/concur-api.md 6), with the App token of the client_credentials grant.
 * `subscribe` PUTs the webhook subscription pointing at this host's events URL (idempotent: run it
 * again to change the filter or URL); `status` shows the topics the app may use, its subscriptions
 * and whether one points here; `unsubscribe` deletes it.
 */
function eventsCommands(api: CommandApi): void {
  const events = api
    .group('concur', 'SAP Concur source operations')
    .command('events')
    .description("Concur's push events (Event Subscription Service) for a Concur source");
  const common = (c: import('commander').Command) =>
    c
      .option('-c, --config <file>', 'deployment file (default: approvals.config.json, else embedded defaults)')
      .option('--source <id>', 'the Concur source (needed when there are several)');
  common(events.command('status').description('topics the app may use, its subscriptions, and whether one points at this host')).action(
    async (opts: { config?: string; source?: string }) =>
      api.withHost(opts.config, async (host) => {
        for (const source of concurSources(host, opts.source)) {
          const client = eventsClient(source);
          const url = eventsUrl(source.id, source.settings);
          const topics = await client.topics();
          api.out(`${source.id}\ttopics: ${topics.length ? topics.join(', ') : '(none: the app lacks a topic scope such as expense.report.read)'}`);
          const subs = await client.subscriptions();
          if (subs.length === 0) api.out(`${source.id}\tsubscriptions: none`);
          for (const s of subs)
            api.out(`${source.id}\tsubscription ${describeSubscription(s)}${url !== undefined && s.webHookConfig.endpoint === url ? '\t(this host)' : ''}`);
          const here = url !== undefined && subs.some((s) => s.webHookConfig.endpoint === url);
          api.out(
            url === undefined
              ? `${source.id}\tthis host's events URL: unknown (set events.publicUrl or consent.publicUrl)`
              : `${source.id}\tthis host's events URL: ${url}\t${here ? 'subscribed' : 'NOT subscribed (run: approvals-hub concur events subscribe)'}`,
          );
        }
      }),
  );
  common(events.command('subscribe').description("subscribe this host's events URL to the expense report topic (create or update)"))
    .option('--id <id>', 'subscription id (default approvals-hub.<source id>.<client id prefix>)', subscriptionIdArg)
    .option('--filter <regex>', 'event types to receive, a regular expression', regexArg, '.*')
    .option('--endpoint <url>', "deliver here instead of this host's events URL")
    .action(async (opts: { config?: string; source?: string; id?: string; filter: string; endpoint?: string }) =>
      api.withHost(opts.config, async (host) => {
        const source = oneConcurSource(host, opts.source);
        const endpoint = opts.endpoint ?? eventsUrl(source.id, source.settings);
        if (!endpoint) throw new Error(`Concur source "${source.id}" has no public URL: set events.publicUrl (or consent.publicUrl), or pass --endpoint`);
        const client = eventsClient(source);
        const topics = await client.topics();
        if (!topics.includes(EXPENSE_REPORT_TOPIC)) {
          throw new Error(
            `Concur offers this app no ${EXPENSE_REPORT_TOPIC} topic (topics: ${topics.join(', ') || 'none'}): the app needs the expense.report.read scope besides events.topic.read`,
          );
        }
        const id = opts.id ?? defaultSubscriptionId(source.id, source.settings.clientId ?? '');
        const message = await client.subscribe({ id, topic: EXPENSE_REPORT_TOPIC, filter: opts.filter, endpoint });
        api.out(`${source.id}\t${message}\t${id} -> ${endpoint} (filter ${opts.filter})`);
      }),
    );
  common(events.command('unsubscribe').description('delete the subscription'))
    .option('--id <id>', 'subscription id (default approvals-hub.<source id>.<client id prefix>)', subscriptionIdArg)
    .action(async (opts: { config?: string; source?: string; id?: string }) =>
      api.withHost(opts.config, async (host) => {
        const source = oneConcurSource(host, opts.source);
        const id = opts.id ?? defaultSubscriptionId(source.id, source.settings.clientId ?? '');
        const message = await eventsClient(source).unsubscribe(id);
        api.out(`${source.id}\t${message ?? `no subscription ${id}; nothing to delete`}`);
      }),
    );
}

/**
 * `approvals-hub sandbox concur`: runs the Concur sandbox as its own process, prints the base URL
 * and credentials as one JSON line, and serves (admin API under /_admin) until SIGINT/SIGTERM.
 */
export default function concurCommands(api: CommandApi): void {
  consentCommands(api);
  eventsCommands(api);
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
    .option('--no-step-notifications', 'push no ESS event for mid-workflow approvals (as a Concur without step notifications configured)')
    .action(
      async (opts: {
        port: number;
        reports: number;
        approvers: number;
        seed: number;
        faults: string;
        latencyMs?: number;
        workflowBumpsLastModified: boolean;
        stepNotifications: boolean;
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
          events: { stepNotifications: opts.stepNotifications },
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
