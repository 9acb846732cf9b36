import { expect } from 'chai';
import { startConcurSandbox, type ConcurSandbox } from '../../plugins/concur/sandbox/concur-sandbox.js';
import { call, tokenRequest, type Json } from '../support/sandbox-http.js';

/**
 * The Concur sandbox's expense delegates over real HTTP on 127.0.0.1: Spend User v4.1 by id with the
 * Delegate extension (company token only), `includeDelegateApprovals` on reportsToApprove, and who
 * may approve / send back: the step's approver, or a delegate with canApprove inside any temporary
 * window, each with their own token on their own URL (docs/concur-api.md, Delegates).
 */

const DELEGATE_EXTENSION = 'urn:ietf:params:scim:schemas:extension:spend:2.0:Delegate';

describe('Concur sandbox: expense delegates (Spend User v4.1, delegate approvals)', function () {
  this.timeout(30_000);
  let sb: ConcurSandbox;
  afterEach(async () => sb?.close());

  async function companyToken(): Promise<string> {
    const res = await tokenRequest(sb, { grant_type: 'password', credtype: 'authtoken', username: sb.companyId, password: sb.credentials.requestToken });
    expect(res.status).to.equal(200);
    return res.body['access_token'] as string;
  }

  /** An access token of `login`'s own, as after the consent page (every user scope, the workflow one included). */
  async function userToken(login: string): Promise<string> {
    const res = await tokenRequest(sb, { grant_type: 'refresh_token', refresh_token: sb.admin.consent(login).refreshToken });
    expect(res.status).to.equal(200);
    return res.body['access_token'] as string;
  }

  const approverLogins = () =>
    sb.admin
      .users()
      .filter((u) => u.isApprover)
      .map((u) => u.loginId);
  const get = (path: string, token: string) => call(`${sb.baseUrl}${path}`, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
  const approve = (userId: string, reportId: string, token: string) =>
    call(`${sb.baseUrl}/expensereports/v4/users/${userId}/context/MANAGER/reports/${reportId}/approve`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
      body: '{}',
    });

  async function company(): Promise<{ ann: { id: string; loginId: string }; bo: { id: string; loginId: string }; report: string }> {
    sb = await startConcurSandbox({ seed: 3, reports: 0, otherReports: 0, approvers: 3, employees: 6, clock: '2026-03-02T09:00:00.000Z', freezeClock: true });
    const [ann, bo] = sb.admin.users().filter((u) => u.isApprover);
    const report = sb.admin.submit({ approver: ann!.loginId, entries: 1 }).ID;
    return { ann: ann!, bo: bo!, report };
  }

  it('serves Spend User v4.1 by id with the expense delegates, to company tokens only; the admin API sets them', async () => {
    const { ann, bo } = await company();
    const token = await companyToken();
    const none = await get(`/profile/spend/v4.1/Users/${ann.id}`, token);
    expect(none.status).to.equal(200);
    expect(none.body['id']).to.equal(ann.id);
    expect(none.body[DELEGATE_EXTENSION]).to.deep.equal({});

    const set = sb.admin.setDelegates(ann.loginId, [
      { delegate: bo.loginId, canApprove: true, canReceiveApprovalEmail: true, from: '2026-03-01T00:00:00Z', to: '2026-03-09T00:00:00Z' },
    ]);
    expect(set).to.deep.equal([
      { delegate: bo.loginId, canApprove: true, canReceiveApprovalEmail: true, from: '2026-03-01T00:00:00Z', to: '2026-03-09T00:00:00Z' },
    ]);
    const read = await get(`/profile/spend/v4.1/Users/${ann.id}`, token);
    const [delegate] = (read.body[DELEGATE_EXTENSION] as { expense: Json[] }).expense;
    expect(delegate).to.deep.include({ canApprove: true, canReceiveApprovalEmail: true });
    expect(delegate!['delegate']).to.deep.include({ value: bo.id });
    expect(delegate!['temporaryDelegation']).to.deep.equal({
      temporaryDelegationFromDate: '2026-03-01T00:00:00Z',
      temporaryDelegationToDate: '2026-03-09T00:00:00Z',
    });

    expect((await get(`/profile/spend/v4.1/Users/${ann.id}`, await userToken(bo.loginId))).status).to.equal(403);
    expect((await get('/profile/spend/v4.1/Users/00000000-0000-0000-0000-000000000000', token)).status).to.equal(404);
    // Over HTTP too, and a user cannot be their own delegate.
    const self = await call(`${sb.baseUrl}/_admin/users/${ann.loginId}/delegates`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ delegate: ann.loginId, canApprove: true, canReceiveApprovalEmail: true }]),
    });
    expect(self.status).to.equal(400);
  });

  it('lets a delegate approve on their own URL with their own token only while they can approve (and inside their window); 403 otherwise', async () => {
    const { ann, bo, report } = await company();
    const boToken = await userToken(bo.loginId);
    const waiting = async (include: boolean) =>
      (
        (await get(`/expensereports/v4/users/${bo.id}/context/MANAGER/reportsToApprove?includeDelegateApprovals=${include}`, boToken)).body as unknown as Json[]
      ).map((r) => r['reportId']);

    // Not a delegate: nothing listed, and the approve is refused.
    expect(await waiting(true)).to.not.include(report);
    expect((await approve(bo.id, report, boToken)).status).to.equal(403);

    // A delegate without canApprove: still refused, still not listed.
    sb.admin.setDelegates(ann.loginId, [{ delegate: bo.loginId, canApprove: false, canReceiveApprovalEmail: true }]);
    expect(await waiting(true)).to.not.include(report);
    expect((await approve(bo.id, report, boToken)).status).to.equal(403);

    // A temporary delegation that has ended: refused.
    sb.admin.setDelegates(ann.loginId, [{ delegate: bo.loginId, canApprove: true, canReceiveApprovalEmail: true, to: '2026-03-01T00:00:00Z' }]);
    expect(await waiting(true)).to.not.include(report);
    expect((await approve(bo.id, report, boToken)).status).to.equal(403);

    // canApprove now: listed with includeDelegateApprovals only, and approved on Bo's URL (not Ann's).
    sb.admin.setDelegates(ann.loginId, [{ delegate: bo.loginId, canApprove: true, canReceiveApprovalEmail: false }]);
    expect(await waiting(false)).to.not.include(report);
    expect(await waiting(true)).to.include(report);
    expect((await approve(ann.id, report, boToken)).status).to.equal(403);
    expect(sb.admin.state().reports.find((r) => r.id === report)).to.include({ status: 'A_PEND' });
    expect((await approve(bo.id, report, boToken)).status).to.equal(204);
    expect(sb.admin.state().reports.find((r) => r.id === report)).to.include({ status: 'A_APPR' });
  });

  it('seeds one delegate for a share of approvers when asked, and none by default', async () => {
    sb = await startConcurSandbox({ seed: 5, reports: 0, otherReports: 0, approvers: 6, employees: 6 });
    expect(approverLogins().every((login) => sb.admin.delegates(login).length === 0)).to.equal(true);
    await sb.close();
    sb = await startConcurSandbox({ seed: 5, reports: 0, otherReports: 0, approvers: 6, employees: 6, delegateRate: 1 });
    for (const login of approverLogins()) {
      const [d, more] = sb.admin.delegates(login);
      expect(more).to.equal(undefined);
      expect(d).to.include({ canApprove: true, canReceiveApprovalEmail: true });
      expect(d!.delegate).to.not.equal(login);
    }
  });
});
