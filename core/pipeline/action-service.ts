import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { ActionInput, ActionResult, ActionTarget, ApprovalActions, Actor } from '../contracts/approval-actions.js';
import type { ApprovalReader, SourceStateStore } from '../contracts/approval-queue.js';
import type { ApprovalSource } from '../contracts/approval-source.js';
import type { Clock } from '../contracts/clock.js';
import type { CredentialStore } from '../contracts/credential-store.js';
import type { Logger } from '../contracts/logger.js';
import type { Card } from '../model/card.js';
import { emailKey } from '../model/email.js';
import type { AuditEntry, QueuedApproval } from '../model/queue-types.js';

/** Where the key that signs action tokens is kept (encrypted, shared by every host on the queue). */
const KEY_NAMESPACE = 'core';
const KEY_NAME = 'action-token-key';
const CLAIMS = 'action-claim';
const TOKEN_VERSION = 1;
/** A claim older than this is taken to belong to a host that died mid-action. */
const CLAIM_LEASE_MS = 2 * 60_000;
/** How long a source may take to act before the click is answered "try again". */
const SOURCE_TIMEOUT_MS = 30_000;

/** How each action reads on a card and in a sentence. */
const DONE: Record<string, { readonly past: string; readonly verb: string }> = {
  approve: { past: 'Approved', verb: 'approved' },
  sendBack: { past: 'Sent back', verb: 'sent back' },
  reject: { past: 'Rejected', verb: 'rejected' },
};
const done = (action: string) => DONE[action] ?? { past: action, verb: action };

interface Claim {
  readonly state: 'acting' | 'done';
  readonly action: string;
  readonly by: string;
  readonly channel: string;
  readonly at: string;
}

export interface ActionServiceOptions {
  /** The longest a button works (it also stops working once its card is redrawn): the queue's retention. */
  readonly tokenTtlMs: number;
  /** Each action's end, for metrics: source, action, outcome, channel, and how long it took. */
  readonly onResult?: ((labels: { source: string; action: string; outcome: string; channel: string }, seconds: number) => void) | undefined;
}

/**
 * After the source acted (or said the card is stale): re-reads the approval and commits it
 * through the source's runner, with `note` on the cards that close and `audit` in the same
 * transaction. The host supplies it, since it owns the runners.
 */
export type ActionRefresh = (approval: QueuedApproval, change: { note?: string; audit?: AuditEntry; action?: string }) => Promise<void>;

/**
 * {@link ApprovalActions}: tokens for act buttons, and the checks between a click and the source.
 * A token is `base64url(payload).base64url(HMAC-SHA256)`, the payload naming the approval, its
 * generation and revision, the approver and the action, and its end; the key is generated once and
 * kept in the credential store. A click is let through only for the approver the card was sent
 * to, while the approval still waits on them at the card's revision, and only one click per card
 * revision at a time across hosts (a claim in the queue's state, under its lock); a card revision
 * acted on once stays acted on, so a replayed button does nothing.
 */
export class ActionService implements ApprovalActions {
  private key: Promise<Buffer> | undefined;
  private refresh: ActionRefresh | undefined;

  constructor(
    private readonly queue: Pick<ApprovalReader, 'get'> & SourceStateStore,
    private readonly sources: ReadonlyMap<string, ApprovalSource>,
    private readonly credentials: CredentialStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: ActionServiceOptions,
  ) {}

  /** Set once by the host when its runners exist; without it, acted-on cards are redrawn by the next poll. */
  setRefresh(refresh: ActionRefresh): void {
    this.refresh = refresh;
  }

  /** The card with a token on each act button, for `email`'s copy of it at this generation. */
  async withTokens(card: Card, generation: string, email: string): Promise<Card> {
    if (!card.actions.some((a) => a.type === 'act')) return card;
    const expiresAt = new Date(this.clock.now().getTime() + this.options.tokenTtlMs).toISOString();
    const actions = await Promise.all(
      card.actions.map(async (a) =>
        a.type === 'act'
          ? {
              ...a,
              token: await this.mint({
                approvalKey: card.approvalKey,
                generation: generation,
                revision: card.revision,
                approverEmail: emailKey(email) ?? email,
                action: a.action,
                expiresAt,
              }),
            }
          : a,
      ),
    );
    return { ...card, actions };
  }

  async connections(email: string): Promise<{ source: string; connectedAt: string }[]> {
    const key = emailKey(email) ?? email;
    const found: { source: string; connectedAt: string }[] = [];
    for (const [id, source] of this.sources) {
      const at = await source.connections?.connectedAt(key);
      if (at) found.push({ source: id, connectedAt: at });
    }
    return found;
  }

  async disconnect(email: string, source: string): Promise<boolean> {
    const key = emailKey(email) ?? email;
    const done = (await this.sources.get(source)?.connections?.disconnect(key)) ?? false;
    if (done) this.logger.info({ source, email: key }, 'approver disconnected their account for actions');
    return done;
  }

  actionsOf(source: string): readonly string[] {
    return this.sources.get(source)?.capabilities.actions ?? [];
  }

  async mint(target: ActionTarget): Promise<string> {
    const payload = Buffer.from(
      JSON.stringify([TOKEN_VERSION, target.approvalKey, target.generation, target.revision, target.approverEmail, target.action, target.expiresAt]),
    ).toString('base64url');
    return `${payload}.${await this.sign(payload)}`;
  }

  async peek(token: string): Promise<(ActionTarget & { title?: string | undefined }) | undefined> {
    const read = await this.read(token);
    if (!read.ok || Date.parse(read.target.expiresAt) <= this.clock.now().getTime()) return undefined;
    const row = await this.queue.get(read.target.approvalKey);
    return { ...read.target, title: row?.title };
  }

  async act(token: string, actor: Actor, input: ActionInput = {}): Promise<ActionResult> {
    const started = performance.now();
    const read = await this.read(token);
    if (!read.ok) {
      this.logger.warn({ channel: actor.channel, reason: read.reason }, 'action refused: the button token is not one this deployment made');
      return this.end(undefined, actor, started, { outcome: 'refused', message: 'This button is not valid. Open the approval from its latest message.' });
    }
    const target = read.target;
    if (Date.parse(target.expiresAt) <= this.clock.now().getTime()) {
      this.logger.warn({ channel: actor.channel, key: target.approvalKey }, 'action refused: the button has expired');
      return this.end(target, actor, started, { outcome: 'refused', message: 'This button has expired. Open the approval from its latest message.' });
    }
    const email = emailKey(actor.email) ?? '';
    if (!email || email !== target.approverEmail) {
      this.logger.warn({ channel: actor.channel, key: target.approvalKey, actor: email }, 'action refused: the card was sent to someone else');
      return this.end(target, actor, started, { outcome: 'not_yours', message: 'This card was sent to someone else; only its approver can act on it.' });
    }
    const row = await this.queue.get(target.approvalKey);
    if (!row || row.status !== 'pending' || row.generation !== target.generation) {
      const claim = await this.claimOf(target);
      const message =
        claim?.state === 'done'
          ? `You already ${done(claim.action).verb} this (${claim.channel}, ${claim.at.slice(0, 16).replace('T', ' ')} UTC).`
          : 'This approval no longer waits on anyone; it was decided or withdrawn.';
      return this.end(target, actor, started, { outcome: 'already_decided', message });
    }
    const approver = row.approvers.find((a) => emailKey(a.email) === email);
    if (!approver?.email) {
      const now = row.approvers.map((a) => a.name ?? a.email ?? a.sourceUserId).join(', ');
      return this.end(target, actor, started, { outcome: 'not_yours', message: `This approval now waits on ${now || 'someone else'}, not on you.` });
    }
    if (row.revision !== target.revision) {
      return this.end(target, actor, started, {
        outcome: 'changed',
        message: 'This approval changed since this card was drawn; its card is being updated. Look at it again before you act.',
      });
    }
    const source = this.sources.get(row.source);
    if (!source?.act || !source.capabilities.actions.includes(target.action)) {
      return this.end(target, actor, started, {
        outcome: 'refused',
        message: `“${target.action}” cannot be done from chat for this approval; open it in its source.`,
      });
    }
    const claimed = await this.claim(target, actor);
    if (claimed !== true) return this.end(target, actor, started, claimed);

    const correlationId = randomUUID();
    let result: ActionResult;
    try {
      result = await source.act({
        approval: row,
        approver: { ...approver, email: approver.email },
        action: target.action,
        input,
        actor,
        correlationId,
        signal: AbortSignal.timeout(SOURCE_TIMEOUT_MS),
      });
    } catch (error) {
      this.logger.error({ source: row.source, key: row.key, action: target.action, err: (error as Error).message }, 'action failed in the source');
      result = { outcome: 'refused', message: 'The approval system could not be reached; nothing was changed. Try again in a minute.' };
    }
    if (result.outcome === 'done') {
      await this.settle(target, { state: 'done', action: target.action, by: email, channel: actor.channel, at: result.at });
      const verb = done(target.action);
      const where = actor.channelName ?? actor.channel;
      const at = result.at.slice(0, 16).replace('T', ' ');
      // A delegate acted for the approver: the note names both ("Approved by bo@… (delegate of Ann Berg) in Slack at …").
      const behalf = approver.onBehalfOf ? ` (delegate of ${approver.onBehalfOf.name ?? approver.onBehalfOf.sourceUserId})` : '';
      const note = `${verb.past} by ${email}${behalf} in ${where} at ${at} UTC${input.comment ? `: “${input.comment}”` : ''}`;
      this.logger.info({ source: row.source, key: row.key, action: target.action, actor: email, channel: actor.channel, correlationId }, 'action done');
      await this.redraw(row, {
        note,
        action: target.action,
        audit: {
          actor: email,
          action: `action.${target.action}`,
          key: row.key,
          detail: JSON.stringify({
            channel: actor.channel,
            correlationId: result.correlationId ?? correlationId,
            comment: input.comment ?? null,
            ...(approver.onBehalfOf ? { onBehalfOf: approver.onBehalfOf.sourceUserId } : {}),
          }),
        },
      });
    } else {
      await this.settle(target, undefined);
      // The source read something else than the card shows: redraw it now rather than at the next poll.
      if (result.outcome === 'already_decided' || result.outcome === 'not_yours' || result.outcome === 'changed') await this.redraw(row, {});
    }
    return this.end(target, actor, started, result, row.source);
  }

  private async redraw(row: QueuedApproval, change: Parameters<ActionRefresh>[1]): Promise<void> {
    if (!this.refresh) return;
    try {
      await this.refresh(row, change);
    } catch (error) {
      // The action itself stands; the next poll redraws the cards.
      this.logger.warn({ key: row.key, err: (error as Error).message }, 'could not redraw the cards after an action; the next poll will');
    }
  }

  private end(
    target: ActionTarget | undefined,
    actor: Actor,
    started: number,
    result: ActionResult,
    source = target?.approvalKey.split(':')[0] ?? 'unknown',
  ): ActionResult {
    this.options.onResult?.(
      { source, action: target?.action ?? 'unknown', outcome: result.outcome, channel: actor.channel },
      (performance.now() - started) / 1000,
    );
    return result;
  }

  /** Takes the card's one claim: `true`, or why not (another click is acting, or one already acted). */
  private async claim(target: ActionTarget, actor: Actor): Promise<true | ActionResult> {
    const now = this.clock.now();
    return this.locked<true | ActionResult>(target, async (current) => {
      if (current?.state === 'done') {
        return { result: { outcome: 'already_decided', message: `This was already ${done(current.action).verb} (${current.channel}).` } as ActionResult };
      }
      if (current?.state === 'acting' && now.getTime() - Date.parse(current.at) < CLAIM_LEASE_MS) {
        return { result: { outcome: 'in_progress', message: 'This approval is being acted on right now; its card will show the outcome.' } as ActionResult };
      }
      const mine: Claim = { state: 'acting', action: target.action, by: emailKey(actor.email) ?? actor.email, channel: actor.channel, at: now.toISOString() };
      return { value: JSON.stringify(mine), result: true as const };
    });
  }

  /** Records how the claim ended: `done` keeps the card revision acted on; undefined frees it for another click. */
  private async settle(target: ActionTarget, claim: Claim | undefined): Promise<void> {
    await this.locked(target, async () => ({ value: claim ? JSON.stringify(claim) : '', result: undefined }));
  }

  private async claimOf(target: ActionTarget): Promise<Claim | undefined> {
    return parseClaim(await this.queue.getState(CLAIMS, claimKey(target)));
  }

  private async locked<T>(target: ActionTarget, work: (current: Claim | undefined) => Promise<{ value?: string | undefined; result: T }>): Promise<T> {
    const key = claimKey(target);
    if (!this.queue.withStateLock) throw new Error('this queue adapter cannot lock its state (withStateLock); actions need it');
    return this.queue.withStateLock(CLAIMS, key, async (value) => work(parseClaim(value)));
  }

  private async read(token: string): Promise<{ ok: true; target: ActionTarget } | { ok: false; reason: string }> {
    const dot = token.indexOf('.');
    if (dot < 1 || token.length > 2048) return { ok: false, reason: 'malformed' };
    const payload = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1), 'base64url');
    const expected = Buffer.from(await this.sign(payload), 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'forged' };
    try {
      const [version, approvalKey, generation, revision, approverEmail, action, expiresAt] = JSON.parse(
        Buffer.from(payload, 'base64url').toString('utf8'),
      ) as unknown[];
      if (version !== TOKEN_VERSION) return { ok: false, reason: 'version' };
      return {
        ok: true,
        target: {
          approvalKey: String(approvalKey),
          generation: String(generation),
          revision: Number(revision),
          approverEmail: String(approverEmail),
          action: String(action),
          expiresAt: String(expiresAt),
        },
      };
    } catch {
      return { ok: false, reason: 'malformed' };
    }
  }

  private async sign(payload: string): Promise<string> {
    return createHmac('sha256', await this.signingKey())
      .update(payload)
      .digest('base64url');
  }

  /** The signing key: made once, by whichever host or command needs it first, and shared through the credential store. */
  private signingKey(): Promise<Buffer> {
    this.key ??= this.credentials
      .rotate(KEY_NAMESPACE, KEY_NAME, async (current) => {
        if (current) return { result: current };
        const made = randomBytes(32).toString('base64url');
        return { value: made, result: made };
      })
      .then((k) => Buffer.from(k, 'base64url'))
      .catch((error: unknown) => {
        this.key = undefined;
        throw error;
      });
    return this.key;
  }
}

function claimKey(target: ActionTarget): string {
  return `${target.approvalKey}#${target.generation}.${target.revision}`;
}

function parseClaim(value: string | undefined): Claim | undefined {
  if (!value) return undefined;
  try {
    return JSON.parse(value) as Claim;
  } catch {
    return undefined;
  }
}
