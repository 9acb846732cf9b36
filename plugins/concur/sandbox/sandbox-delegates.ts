import type { SandboxDirectory, SandboxUser } from './sandbox-people.js';
import type { SeededRandom } from './sandbox-random.js';

/** What an approver lets one expense delegate do (the Spend Delegate object's flags the sandbox models). */
export interface DelegateRights {
  readonly canApprove: boolean;
  readonly canReceiveApprovalEmail: boolean;
  readonly canPrepare?: boolean;
  readonly canPrepareForApproval?: boolean;
  readonly canSubmit?: boolean;
  readonly canViewReceipt?: boolean;
  /** Temporary delegation window, ISO-8601; either end may be open. */
  readonly from?: string | undefined;
  readonly to?: string | undefined;
}

/** One expense delegate of a user: who, and their rights. */
export interface DelegateRecord extends DelegateRights {
  readonly delegateIndex: number;
}

/** One expense delegate as the admin API takes and shows it: the delegate by login ID. */
export interface DelegateSpec extends DelegateRights {
  readonly delegate: string;
}

/**
 * Users' expense delegates (the Spend User Delegate extension's `expense`), by the delegating
 * user's index. A delegate acts for that user while `canApprove` holds and the temporary window,
 * if any, contains the sandbox's now: `includeDelegateApprovals` lists those users' reports, and
 * approve / sendBack accept the delegate's own token on the delegate's own URL for them.
 */
export class SandboxDelegates {
  private readonly byUser = new Map<number, DelegateRecord[]>();

  /** Gives a share `rate` of `approvers` one delegate each (another approver), with approve and approval-e-mail rights. */
  seed(directory: SandboxDirectory, rate: number, rng: SeededRandom): void {
    if (rate <= 0) return;
    const approvers = directory.approvers();
    if (approvers.length < 2) return;
    for (const approver of approvers) {
      if (rng.next() >= rate) continue;
      const others = approvers.filter((a) => a.index !== approver.index);
      const delegate = others[Math.floor(rng.next() * others.length)]!;
      this.byUser.set(approver.index, [{ delegateIndex: delegate.index, canApprove: true, canReceiveApprovalEmail: true }]);
    }
  }

  /** Replaces `user`'s expense delegates. */
  set(user: SandboxUser, delegates: readonly DelegateRecord[]): void {
    if (delegates.some((d) => d.delegateIndex === user.index)) throw new RangeError('a user cannot be their own delegate');
    if (delegates.length === 0) this.byUser.delete(user.index);
    else this.byUser.set(user.index, [...delegates]);
  }

  of(userIndex: number): readonly DelegateRecord[] {
    return this.byUser.get(userIndex) ?? [];
  }

  /** Whether `delegateIndex` may approve for `userIndex` at `nowMs`. */
  canActFor(delegateIndex: number, userIndex: number, nowMs: number): boolean {
    return this.of(userIndex).some((d) => d.delegateIndex === delegateIndex && d.canApprove && inWindow(d, nowMs));
  }

  /** The users `delegateIndex` may approve for at `nowMs`. */
  principalsOf(delegateIndex: number, nowMs: number): number[] {
    const out: number[] = [];
    for (const [user, delegates] of this.byUser)
      if (delegates.some((d) => d.delegateIndex === delegateIndex && d.canApprove && inWindow(d, nowMs))) out.push(user);
    return out;
  }
}

export function inWindow(d: DelegateRights, nowMs: number): boolean {
  return (d.from === undefined || Date.parse(d.from) <= nowMs) && (d.to === undefined || nowMs <= Date.parse(d.to));
}
