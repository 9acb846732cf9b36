import { InvalidArgumentError } from 'commander';
import type { CommandApi, HostHandle } from '../../core/index.js';
import { normaliseEmail } from './signed-links.js';
import { WebInboxNotifier } from './web-inbox-notifier.js';

const email = (value: string): string => {
  const normalised = normaliseEmail(value);
  if (!normalised) throw new InvalidArgumentError('must be an e-mail address');
  return normalised;
};

/** The deployment's web inbox: the one there is, or the one `--notifier` names. */
function findInbox(host: HostHandle, id: string | undefined): WebInboxNotifier {
  const inboxes = [...host.notifiers.values()].filter((n): n is WebInboxNotifier => n instanceof WebInboxNotifier);
  if (id !== undefined) {
    const named = inboxes.find((n) => n.id === id);
    if (!named) throw new Error(`no web inbox notifier "${id}" in the deployment (web inboxes: ${inboxes.map((n) => n.id).join(', ') || 'none'})`);
    return named;
  }
  if (inboxes.length === 0) throw new Error('the deployment has no web inbox: add a notifier with "plugin": "web"');
  if (inboxes.length > 1) throw new Error(`the deployment has several web inboxes (${inboxes.map((n) => n.id).join(', ')}); pick one with --notifier`);
  return inboxes[0]!;
}

/**
 * `approvals-hub inbox link EMAIL`: prints a sign-in link to the web inbox for that person, for
 * an operator to send them (or for a chat bot to post). Anyone holding the link can sign in as
 * that person, once, until it expires, so it goes to them only, over a channel that is theirs.
 *
 * `approvals-hub inbox revoke EMAIL`: ends every session of that person on every host sharing
 * the queue, and every link made for them so far (a lost phone, a link sent to the wrong person).
 */
export default function webInboxCommands(api: CommandApi): void {
  const inbox = api.group('inbox', 'the web inbox, where approvers see what waits on them');
  inbox
    .command('link')
    .description('print a sign-in link to the web inbox for one person (works once, for the configured linkTtlMinutes)')
    .argument('<email>', "the person's work e-mail, as the source's identity directory knows it", email)
    .option('-c, --config <file>', 'deployment file (default: approvals.config.json, else embedded defaults)')
    .option('--notifier <id>', 'which web inbox, when the deployment has several')
    .action(async (address: string, opts: { config?: string; notifier?: string }) =>
      api.withHost(
        opts.config,
        async (host) => {
          api.out((await findInbox(host, opts.notifier).signInUrl(address)).url);
        },
        { readOnly: true },
      ),
    );
  inbox
    .command('revoke')
    .description('end every web inbox session of one person, on every host, and every sign-in link made for them so far')
    .argument('<email>', "the person's work e-mail", email)
    .option('-c, --config <file>', 'deployment file (default: approvals.config.json, else embedded defaults)')
    .option('--notifier <id>', 'which web inbox, when the deployment has several')
    .action(async (address: string, opts: { config?: string; notifier?: string }) =>
      api.withHost(opts.config, async (host) => {
        await findInbox(host, opts.notifier).revokeSessions(address);
        api.out(`revoked every web inbox session of ${address}; they need a new sign-in link (approvals-hub inbox link ${address})`);
      }),
    );
}
