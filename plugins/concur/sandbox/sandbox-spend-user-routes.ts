import type { FastifyInstance } from 'fastify';
import { SandboxError } from './sandbox-company.js';
import { addRoute, hasScope, principalOf, type SandboxContext } from './sandbox-context.js';
import type { DelegateRecord } from './sandbox-delegates.js';
import type { SandboxDirectory } from './sandbox-people.js';

/** The scope Spend User v4.1 reads need (v4.1.spend-user-retrieval.md "Scopes"). */
export const SPEND_USER_SCOPE = 'spend.user.general.read';

const SCIM_RESOURCE = 'urn:ietf:params:scim:schemas:ScimResource';
const SPEND_USER = 'urn:ietf:params:scim:schemas:extension:spend:2.0:User';
const DELEGATE_EXTENSION = 'urn:ietf:params:scim:schemas:extension:spend:2.0:Delegate';

/** A delegate as the Spend Delegate object shows it. */
function renderDelegate(d: DelegateRecord, directory: SandboxDirectory): Record<string, unknown> {
  const user = directory.get(d.delegateIndex);
  return {
    canApprove: d.canApprove,
    canPrepare: d.canPrepare ?? false,
    canPrepareForApproval: d.canPrepareForApproval ?? false,
    canReceiveApprovalEmail: d.canReceiveApprovalEmail,
    canReceiveEmail: d.canReceiveApprovalEmail,
    canSubmit: d.canSubmit ?? false,
    canSubmitTravelRequest: false,
    canUseBi: false,
    canViewReceipt: d.canViewReceipt ?? false,
    delegate: { value: user.id, employeeNumber: user.employeeNumber },
    ...(d.from !== undefined || d.to !== undefined
      ? { temporaryDelegation: { temporaryDelegationFromDate: d.from ?? null, temporaryDelegationToDate: d.to ?? null } }
      : {}),
  };
}

/**
 * Spend User v4.1 `GET /profile/spend/v4.1/Users/{id}` (v4.1.spend-user-retrieval.md), the parts
 * the plugin reads: the SCIM resource with the spend User extension's basics and the Delegate
 * extension, `expense` as an array of Spend Delegates (the docs' table types it as one object; the
 * plugin takes either). Company tokens with `spend.user.general.read` only; 404 for an unknown id.
 */
export function registerSpendUserRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  addRoute(app, ctx, 'GET', '/profile/spend/v4.1/Users/:id', { group: 'identity', family: 'scim', auth: true }, async (request, reply) => {
    if (principalOf(ctx, request).kind !== 'company') throw new SandboxError(403, 'Spend User APIs accept company-level access tokens only');
    if (!hasScope(ctx, request, SPEND_USER_SCOPE)) throw new SandboxError(403, `The access token lacks the ${SPEND_USER_SCOPE} scope`);
    const { id } = request.params as { id: string };
    const { directory } = ctx.company;
    const user = directory.byUuid(id);
    if (!user) throw new SandboxError(404, `User ${id} not found`);
    const delegates = ctx.company.delegates.of(user.index);
    return reply.send({
      schemas: [SCIM_RESOURCE, SPEND_USER, DELEGATE_EXTENSION],
      id: user.id,
      meta: { resourceType: 'User', created: null, lastModified: null, location: `${ctx.baseUrl()}/profile/spend/v4.1/Users/${user.id}`, version: null },
      [SPEND_USER]: { country: user.country, ledgerCode: null, reimbursementCurrency: user.currencyCode },
      [DELEGATE_EXTENSION]: delegates.length > 0 ? { expense: delegates.map((d) => renderDelegate(d, directory)) } : {},
    });
  });
}
