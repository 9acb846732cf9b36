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
 * that person until it expires, so it goes to them only, over a channel that is theirs.
 */
export default function webInboxCommands(api: CommandApi): void {
  api
    .group('inbox', 'the web inbox, where approvers see what waits on them')
    .command('link')
    .description('print a sign-in link to the web inbox for one person (valid for the configured linkTtlMinutes)')
    .argument('<email>', "the person's work e-mail, as the source's identity directory knows it", email)
    .option('-c, --config <file>', 'deployment file (default: approvals.config.json, else embedded defaults)')
    .option('--notifier <id>', 'which web inbox, when the deployment has several')
    .action(async (address: string, opts: { config?: string; notifier?: string }) =>
      api.withHost(opts.config, async (host) => {
        api.out(findInbox(host, opts.notifier).signInUrl(address).url);
      }, { readOnly: true }),
    );
}
