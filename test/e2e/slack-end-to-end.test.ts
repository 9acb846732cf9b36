import { expect } from 'chai';
import { FakeSlack, type FakeSlackMessage } from '../support/fake-slack.js';
import { concurHarness, type ConcurHarness } from '../support/concur-harness.js';

/** Concur sandbox → host (real Concur and Slack plugins, SQLite) → a fake Slack Web API on loopback. */
describe('end to end: Concur sandbox → host → Slack', function () {
  this.timeout(60_000);
  let h: ConcurHarness;
  let slack: FakeSlack;

  beforeEach(async () => {
    slack = await FakeSlack.start();
    h = await concurHarness({
      sandbox: { workflowBumpsLastModified: false },
      notifiers: [
        { id: 'slack', plugin: 'slack', config: { botToken: { env: 'AH_SLACK_TOKEN' }, signingSecret: { env: 'AH_SLACK_SIGNING' }, apiUrl: slack.apiUrl } },
      ],
      env: { AH_SLACK_TOKEN: FakeSlack.TOKEN, AH_SLACK_SIGNING: 'slack-signing-secret-for-tests' },
    });
    h.sandbox.admin.users().forEach((u, i) => slack.addUser({ id: `U${String(i).padStart(8, '0')}`, email: u.email }));
  });
  afterEach(async () => {
    await h?.close();
    await slack?.close();
  });

  const slackId = (login: string) => {
    const email = h.sandbox.admin.users().find((u) => u.loginId === login)!.email;
    return h.sandbox.admin.users().findIndex((u) => u.email === email);
  };
  const dmsAbout = (login: string, reportId: string): FakeSlackMessage[] =>
    slack.messagesTo(`U${String(slackId(login)).padStart(8, '0')}`).filter((m) => String(m.metadata?.event_payload.approval_key).endsWith(`:${reportId}`));
  const approverOf = (id: string) => h.sandbox.admin.state().reports.find((r) => r.id === id)!.approverLoginID!;
  const hasButtons = (m: FakeSlackMessage) => JSON.stringify(m.blocks ?? []).includes('"type":"button"');

  it('sends one DM per approver per approval, then updates it and removes its buttons within one sweep of the approval', async () => {
    const reports = [h.sandbox.admin.submit({}), h.sandbox.admin.submit({}), h.sandbox.admin.submit({})];
    await h.cycle();
    await h.cycle();
    for (const r of reports) {
      const dms = dmsAbout(approverOf(r.ID), r.ID);
      expect(dms, `DMs about ${r.ID}`).to.have.length(1);
      expect(hasButtons(dms[0]!)).to.equal(true);
    }
    const approved = reports[0]!;
    const approver = approverOf(approved.ID);
    h.advance(600);
    h.sandbox.admin.submit({}); // moves the cursor on, so only the sweep can see the approval
    await h.cycle();
    h.sandbox.admin.approve(approved.ID);
    h.advance(15 * 60);
    await h.cycle();
    const [dm] = dmsAbout(approver, approved.ID);
    expect(dm!.edited, 'updated in place').to.not.equal(undefined);
    expect(hasButtons(dm!)).to.equal(false);
    expect(JSON.stringify(dm!.blocks)).to.match(/Approved/);
    expect(slack.callsTo('chat.postMessage').filter((c) => String(c.args.metadata).includes(approved.ID))).to.have.length(1);
  });

  it('delivers every notification exactly once after Slack comes back from 5xx and 429s', async () => {
    slack.fail({ kind: 'http', status: 503 }, { times: 1000, methods: ['chat.postMessage'] });
    const reports = [h.sandbox.admin.submit({}), h.sandbox.admin.submit({}), h.sandbox.admin.submit({})];
    await h.cycle();
    for (const r of reports) expect(dmsAbout(approverOf(r.ID), r.ID)).to.have.length(0);
    slack.recover();
    slack.fail({ kind: 'rate-limited', retryAfter: 1 }, { times: 2, methods: ['chat.postMessage'] });
    for (let i = 0; i < 6; i++) {
      h.advance(600); // past every backoff and Retry-After
      await h.host.drain();
    }
    for (const r of reports) expect(dmsAbout(approverOf(r.ID), r.ID), r.ID).to.have.length(1);
    expect(await h.host.queue.listOutbox('dead')).to.deep.equal([]);
  });

  it('closes a card whose first delivery was still being retried when the report was approved', async () => {
    slack.fail({ kind: 'rate-limited', retryAfter: 3600 }, { times: 1, methods: ['chat.postMessage'] });
    const report = h.sandbox.admin.submit({});
    const approver = approverOf(report.ID);
    await h.cycle(); // the notify meets a 429 and waits out its Retry-After, an hour
    expect(dmsAbout(approver, report.ID)).to.have.length(0);
    h.sandbox.admin.approve(report.ID);
    h.advance(15 * 60);
    await h.cycle(); // a sweep sees the approval: the close is owed while the notify still waits
    h.advance(3600);
    await h.host.drain();

    const [dm, ...others] = dmsAbout(approver, report.ID);
    expect(others, 'one DM').to.deep.equal([]);
    expect(dm, 'the notify was delivered, not dropped').to.not.equal(undefined);
    expect(hasButtons(dm!), 'no live button on an approved report').to.equal(false);
    expect(JSON.stringify(dm!.blocks)).to.match(/Approved/);
    expect(await h.host.queue.listOutbox('pending')).to.deep.equal([]);
  });
});
