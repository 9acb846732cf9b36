import type { components } from '../generated/spend-user-v4.1.js';
import { JsonObject, type JsonValue } from './json-reader.js';

/** Spend User v4.1's Delegate extension (openapi/concur/spend-user-v4.1.yaml). */
export const DELEGATE_EXTENSION = 'urn:ietf:params:scim:schemas:extension:spend:2.0:Delegate';

type SpendDelegate = components['schemas']['SpendDelegate'];

/** One expense delegate of a user, as the plugin uses it: who, and what they may do. */
export interface ExpenseDelegate {
  /** The delegate's Concur user UUID (`delegate.value`). */
  readonly userId: string;
  readonly canApprove: boolean;
  readonly canReceiveApprovalEmail: boolean;
  /** Temporary delegation window (ISO-8601), when the delegation is temporary; either end may be open. */
  readonly from?: string | undefined;
  readonly to?: string | undefined;
}

function readDelegate(v: JsonValue): SpendDelegate {
  const o = v.object();
  const ref = o.object('delegate');
  const temporary = o.nullableObject('temporaryDelegation');
  return {
    canApprove: o.optionalBoolean('canApprove'),
    canReceiveApprovalEmail: o.optionalBoolean('canReceiveApprovalEmail'),
    delegate: { value: ref.optionalString('value'), employeeNumber: ref.nullableString('employeeNumber') },
    temporaryDelegation:
      temporary === undefined || temporary === null
        ? temporary
        : {
            temporaryDelegationFromDate: temporary.nullableString('temporaryDelegationFromDate'),
            temporaryDelegationToDate: temporary.nullableString('temporaryDelegationToDate'),
          },
  };
}

/**
 * The expense delegates of `GET /profile/spend/v4.1/Users/{id}`: the Delegate extension's
 * `expense`, taken as a list or as the single object the docs' table shows; none when the
 * extension or the list is absent. A delegate without a UUID is dropped (nothing can be done with it).
 * @throws ConcurPayloadError naming the offending field.
 */
export function parseExpenseDelegates(json: unknown): ExpenseDelegate[] {
  const user = JsonObject.root(json, 'Concur spend user');
  const extension = user.nullableObject(DELEGATE_EXTENSION);
  if (!extension) return [];
  const expense = extension.get('expense');
  if (expense.isAbsent || expense.isNull) return [];
  const raw = Array.isArray(expense.value) ? expense.array().map(readDelegate) : [readDelegate(expense)];
  return raw.flatMap((d) => {
    const userId = d.delegate.value?.trim();
    if (!userId) return [];
    const from = d.temporaryDelegation?.temporaryDelegationFromDate ?? undefined;
    const to = d.temporaryDelegation?.temporaryDelegationToDate ?? undefined;
    return [
      {
        userId,
        canApprove: d.canApprove === true,
        canReceiveApprovalEmail: d.canReceiveApprovalEmail === true,
        ...(from ? { from } : {}),
        ...(to ? { to } : {}),
      },
    ];
  });
}

/** Whether a delegation holds at `nowMs`: outside its temporary window (if any) it does not. An unreadable date counts as open. */
export function delegationActive(d: Pick<ExpenseDelegate, 'from' | 'to'>, nowMs: number): boolean {
  const from = d.from === undefined ? NaN : Date.parse(d.from);
  const to = d.to === undefined ? NaN : Date.parse(d.to);
  return (Number.isNaN(from) || from <= nowMs) && (Number.isNaN(to) || nowMs <= to);
}
