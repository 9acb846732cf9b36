import type { ServiceIdentifier } from '../di.js';
import type { Approver } from '../model/approval.js';
import type { Card } from '../model/card.js';
import type { QueuedApproval } from '../model/queue-types.js';

/**
 * Who pressed a button, as the channel verified it: Slack by its signed request and the user's
 * profile e-mail, Teams by its Bot Framework token, the web inbox by its session. The core never
 * trusts an e-mail a request merely states.
 */
export interface Actor {
  /** The clicker's work e-mail, as the channel verified it. */
  readonly email: string;
  /** The notifier id the click came through (`slack`, `teams`, `web`), for the audit log and the card's outcome. */
  readonly channel: string;
  /** How the channel names the channel to people ("Slack", "Teams", "the web inbox"); defaults to the id. */
  readonly channelName?: string | undefined;
}

/** What the approver typed with the action. */
export interface ActionInput {
  /** A comment for the requester: required by some actions (Concur's send back), optional on others. */
  readonly comment?: string | undefined;
}

/**
 * How an action ended, always with a sentence to show the clicker. Nothing here is an exception:
 * a refusal is an answer, and the channel shows it.
 * - `done`: the source took the action (`correlationId`: the source's id of the call, if it gives one).
 * - `already_decided`: the approval left pending before the click (approved in the source, sent back...).
 * - `not_yours`: the clicker is not (or no longer) the approver of this step.
 * - `changed`: the approval changed since the card was drawn; the card is being redrawn, look again.
 * - `consent_needed`: the source needs the approver's own consent first; `url` starts it.
 * - `in_progress`: another click on this card is being acted on right now.
 * - `refused`: anything else the source or the core refused (forged or expired button, comment missing).
 */
export type ActionResult =
  | { readonly outcome: 'done'; readonly action: string; readonly message: string; readonly at: string; readonly correlationId?: string | undefined }
  | {
      readonly outcome: 'consent_needed';
      readonly message: string;
      readonly url: string;
      /** The button's words, naming the source ("Connect your Concur account"); channels fall back to "Connect your account". */
      readonly label?: string | undefined;
    }
  | { readonly outcome: 'already_decided' | 'not_yours' | 'changed' | 'in_progress' | 'refused'; readonly message: string };

export type ActionOutcome = ActionResult['outcome'];

/** What a button carries, once its token is read: which card, for whom, to do what. */
export interface ActionTarget {
  readonly approvalKey: string;
  readonly generation: string;
  readonly revision: number;
  /** The approver the card was sent to (e-mail, lower-cased ASCII). */
  readonly approverEmail: string;
  readonly action: string;
  /** ISO-8601: the token's end. */
  readonly expiresAt: string;
}

/**
 * The core's one path from a button in any channel to an action in the source. A channel passes
 * the button's opaque token, the verified clicker and what they typed; the core checks the token
 * (signature, expiry, one card revision, one approver), that the approval still waits on that
 * person at that version, lets one click per card through at a time (across hosts), asks the
 * source to act, records the audit row and the metric, and redraws the approver's cards with the
 * outcome on every channel.
 */
export interface ApprovalActions {
  act(token: string, actor: Actor, input?: ActionInput): Promise<ActionResult>;
  /**
   * Reads a token without acting: the channel's modal asks for a comment about the right report.
   * Undefined for a token that is forged, malformed or expired.
   */
  peek(token: string): Promise<(ActionTarget & { readonly title?: string | undefined }) | undefined>;
  /**
   * `card` with a token on each act button for `email`'s copy of it, at the queued approval's
   * `generation`. The outbox does this for every delivered card; a channel that draws cards from
   * the queue itself (the web inbox's list) calls it for the signed-in person.
   */
  withTokens(card: Card, generation: string, email: string): Promise<Card>;
  /** The sources `email` has connected to for actions (see {@link SourceConnections}), with when. */
  connections(email: string): Promise<{ readonly source: string; readonly connectedAt: string }[]>;
  /** Forgets `email`'s connection to `source` (the approver's own "Disconnect"); true if there was one. */
  disconnect(email: string, source: string): Promise<boolean>;
  /**
   * The actions `source` offers on its cards (its `capabilities.actions`), for a channel that
   * renders cards from the queue itself; empty for a source this host does not run.
   */
  actionsOf(source: string): readonly string[];
}
export const ApprovalActions: ServiceIdentifier<ApprovalActions> = Symbol.for('approvals.core.ApprovalActions');

/**
 * A source whose actions need each approver's own consent (Concur's user tokens) lists and
 * forgets those connections through this, so any channel can offer "Disconnect".
 */
export interface SourceConnections {
  /** When `email` connected (ISO-8601), or undefined when they have not. */
  connectedAt(email: string): Promise<string | undefined>;
  /** Forgets `email`'s connection; their next press asks them to connect again. True if there was one. */
  disconnect(email: string): Promise<boolean>;
}

/** What the core asks a source to do: one action on one queued approval, by its approver. */
export interface SourceActRequest {
  /** The approval as queued: the version the card showed (the source compares it with what it reads now). */
  readonly approval: QueuedApproval;
  /** The approver acting, as queued (their source id and e-mail). */
  readonly approver: Approver & { readonly email: string };
  readonly action: string;
  readonly input: ActionInput;
  readonly actor: Actor;
  /** One id per click; a source that accepts a correlation id passes it on, and the audit row records it. */
  readonly correlationId: string;
  readonly signal: AbortSignal;
}

/**
 * A source that supports actions implements `act` on its {@link ApprovalSource} and names them in
 * `capabilities.actions`. It re-reads the approval as the approver right before acting, and
 * answers `already_decided`, `not_yours` or `changed` when what it reads is not what the card
 * showed; it never acts on a stale card.
 */
export interface ActingSource {
  act(request: SourceActRequest): Promise<ActionResult>;
}
