import { expect } from 'chai';
import type { ActionResult, CardAction } from '../../core/index.js';
import type { ConcurApprovalSource } from '../../plugins/concur/concur-approval-source.js';
import { callsTo } from '../../plugins/concur/sandbox/index.js';
import { concurHarness, SOURCE, type ConcurHarness } from '../support/concur-harness.js';

/**
 * Connecting with a code Concur e-mails (the One Time Password grant, docs/concur-api.md 4.4, 13.1)
 * against the sandbox over real HTTP: the connect page's "E-mail me a code", the code read from
 * the sandbox's outbox, the code form, and the refusals (wrong code, cross-site post, a deployment
 * without the method).
 */

/** Where approvers' browsers reach the host; requests go to its loopback URL with this origin, as through a TLS proxy. */
const PUBLIC_URL = 'https://approvals.example.test';
const OTP = 'POST /oauth2/v0/otp';
const TOKEN = 'POST /oauth2/v0/token';

type Act = Extract<CardAction, { type: 'act' }>;

/** A form on one of the consent pages: its (relative) action and its hidden fields, HTML-unescaped. */
function formOf(html: string, action: string): Record<string, string> {
  const form = new RegExp(`<form method="post" action="${action}">(.*?)</form>`).exec(html)?.[1];
  if (form === undefined) throw new Error(`no ${action} form in: ${html}`);
  const fields: Record<string, string> = {};
  for (const m of form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[m[1]!] = m[2]!.replace(/&#(\d+);/g, (_, c: string) => String.fromCharCode(Number(c)));
  }
  return fields;
}

describe('Concur actions: connecting with an e-mailed one-time code (sandbox, real HTTP)', function () {
  this.timeout(60_000);
  let h: ConcurHarness;
  afterEach(async () => h?.close());

  async function start(methods?: readonly string[]): Promise<void> {
    h = await concurHarness({ http: true, config: { actions: ['approve', 'sendBack'], consent: { publicUrl: PUBLIC_URL, ...(methods ? { methods } : {}) } } });
    await h.host.start();
  }

  const emailOf = (login: string) =>
    h.sandbox.admin
      .users()
      .find((u) => u.loginId === login)!
      .email.toLowerCase();
  const reportState = (id: string) => h.sandbox.admin.state().reports.find((r) => r.id === id)!;
  const chat = (email: string) => ({ email, channel: 'chat', channelName: 'Chat' });
  const consents = () => (h.host.sources.get(SOURCE) as ConcurApprovalSource).consents!;
  const route = (path: string) => `${h.host.url!}/concur/${SOURCE}/${path}`;
  /** A same-origin form post, as the browser sends it from the connect page at the public URL. */
  const post = async (path: string, fields: Record<string, string>, origin = PUBLIC_URL) => {
    const response = await fetch(route(path), {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin },
      body: new URLSearchParams(fields).toString(),
    });
    return { status: response.status, html: await response.text() };
  };

  async function submitted(): Promise<{ id: string; login: string; email: string }> {
    const report = h.sandbox.admin.submit({ entries: 1 });
    await h.cycle();
    const login = report.ApproverLoginID!;
    return { id: report.ID, login, email: emailOf(login) };
  }

  function tokenOf(id: string, email: string, action: string): string {
    const card = h.notifier.for(email, `${SOURCE}:expense-report:${id}`).at(-1)!.card;
    const button = card.actions.find((a): a is Act => a.type === 'act' && a.action === action);
    expect(button, `an ${action} button on ${JSON.stringify(card.actions)}`).to.not.equal(undefined);
    return button!.token!;
  }

  /** The first press answers consent_needed; its connect page offers "E-mail me a code"; the fields of that form. */
  async function connectPage(r: { id: string; email: string }): Promise<{ url: string; html: string; send: Record<string, string> }> {
    const first = await h.host.actions.act(tokenOf(r.id, r.email, 'approve'), chat(r.email), { comment: 'ok' });
    expect(first.outcome).to.equal('consent_needed');
    const url = (first as Extract<ActionResult, { outcome: 'consent_needed' }>).url;
    expect(url).to.match(new RegExp(`^${PUBLIC_URL}/concur/${SOURCE}/connect\\?state=`));
    const page = await fetch(url.replace(PUBLIC_URL, h.host.url!), { redirect: 'manual' });
    const html = await page.text();
    expect(page.status, html).to.equal(200);
    expect(html).to.contain(r.email);
    return { url, html, send: formOf(html, 'otp/send') };
  }

  /** Presses "E-mail me a code": the code form's fields and the code the sandbox "e-mailed". */
  async function requestCode(send: Record<string, string>, email: string): Promise<{ verify: Record<string, string>; otp: string }> {
    const sent = await post('otp/send', send);
    expect(sent.status, sent.html).to.equal(200);
    expect(sent.html).to.contain(`e-mailed a one-time code to ${email}`);
    const message = h.sandbox.admin.otpOutbox().at(-1)!;
    expect(message.to).to.equal(email);
    return { verify: formOf(sent.html, 'otp/verify'), otp: message.otp };
  }

  it("connects with the code e-mailed to the approver's own address, then the same button approves", async () => {
    await start(['otp']);
    const r = await submitted();
    const { html, send } = await connectPage(r);
    expect(html).to.not.contain('sign in to Concur'); // only the one method is on
    expect(Object.keys(send)).to.deep.equal(['state']); // the address comes from the state, never from the form

    const { verify, otp } = await requestCode(send, r.email);
    // The client parameter that binds the code to this link went to Concur, and must come back unchanged.
    expect(Object.keys(h.sandbox.admin.otpOutbox().at(-1)!.params)).to.deep.equal(['approvals_hub_link']);
    const done = await post('otp/verify', { ...verify, code: otp });
    expect(done.status, done.html).to.equal(200);
    expect(done.html).to.contain('Go back and press Approve or Send back again');
    expect((await consents().list()).map((e) => e.email)).to.deep.equal([r.email]);
    expect(h.logs.join('\n')).to.not.contain(otp);

    const before = h.sandbox.calls();
    const approved = await h.host.actions.act(tokenOf(r.id, r.email, 'approve'), chat(r.email), { comment: 'Thanks' });
    expect(approved, JSON.stringify(approved)).to.include({ outcome: 'done', action: 'approve' });
    expect(callsTo(h.sandbox.calls(), TOKEN) - callsTo(before, TOKEN)).to.equal(0); // the access token from the code is used
    expect(reportState(r.id)).to.include({ status: 'A_APPR' });

    // The link is used up: neither the page nor its forms work again.
    expect((await post('otp/verify', { ...verify, code: otp })).status).to.equal(400);
    expect((await post('otp/send', send)).status).to.equal(400);
  });

  it('refuses a wrong code with a retry on the same link, stores nothing, and takes the right code after it', async () => {
    await start(['otp', 'authorization_code']);
    const r = await submitted();
    const { html, send } = await connectPage(r);
    expect(html).to.contain('sign in to Concur'); // both methods on: the redirect is one link away
    const { verify, otp } = await requestCode(send, r.email);
    const wrong = otp === '00000000' ? '00000001' : '00000000';

    const refused = await post('otp/verify', { ...verify, code: wrong });
    expect(refused.status).to.equal(400);
    expect(refused.html).to.contain('That code is wrong, was already used or has expired.');
    expect(refused.html).to.contain('4 tries left');
    expect(formOf(refused.html, 'otp/verify')).to.deep.equal(verify); // the form to try again
    expect(await consents().list()).to.deep.equal([]);
    expect(reportState(r.id)).to.include({ status: 'A_PEND' });

    const empty = await post('otp/verify', { ...verify, code: '  ' });
    expect(empty.status).to.equal(400);
    expect(empty.html).to.contain('Type the code');

    const done = await post('otp/verify', { ...verify, code: otp });
    expect(done.status, done.html).to.equal(200);
    expect((await consents().list()).map((e) => e.email)).to.deep.equal([r.email]);
  });

  it('ends a link after five wrong codes', async () => {
    await start(['otp']);
    const r = await submitted();
    const { send } = await connectPage(r);
    const { verify, otp } = await requestCode(send, r.email);
    const wrong = otp === '00000000' ? '00000001' : '00000000';
    for (let i = 0; i < 4; i++) expect((await post('otp/verify', { ...verify, code: wrong })).status).to.equal(400);
    const last = await post('otp/verify', { ...verify, code: wrong });
    expect(last.html).to.contain('That was the last try for this link');
    const late = await post('otp/verify', { ...verify, code: otp });
    expect(late.status).to.equal(400);
    expect(late.html).to.contain('This link does not work');
    expect(await consents().list()).to.deep.equal([]);
  });

  it('tells the approver when Concur has too many codes open for their address, and keeps the form for one already sent', async () => {
    await start(['otp']);
    const r = await submitted();
    const { send } = await connectPage(r);
    for (let i = 0; i < 5; i++) expect((await post('otp/send', send)).status).to.equal(200);
    const refused = await post('otp/send', send);
    expect(refused.status).to.equal(400);
    expect(refused.html).to.contain('Concur has too many codes waiting for your address');
    expect(h.sandbox.admin.otpOutbox()).to.have.length(5);
    // Every code sent for the link carries the same binding, so an earlier one still connects.
    const done = await post('otp/verify', { ...formOf(refused.html, 'otp/verify'), code: h.sandbox.admin.otpOutbox()[0]!.otp });
    expect(done.status, done.html).to.equal(200);
    expect((await consents().list()).map((e) => e.email)).to.deep.equal([r.email]);
  });

  it('refuses cross-site posts and forged states without asking Concur for a code', async () => {
    await start(['otp']);
    const r = await submitted();
    const { send } = await connectPage(r);
    const before = callsTo(h.sandbox.calls(), OTP);

    const crossSite = await post('otp/send', send, 'https://evil.example');
    expect(crossSite.status).to.equal(403);
    expect(crossSite.html).to.contain('only works from the connect page');
    const noOrigin = await fetch(route('otp/send'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'cross-site' },
      body: new URLSearchParams(send).toString(),
    });
    expect(noOrigin.status).to.equal(403);
    const forged = await post('otp/send', { state: `${Buffer.from(r.email).toString('base64url')}.${'A'.repeat(32)}` });
    expect(forged.status).to.equal(400);
    expect(forged.html).to.contain('This link does not work');
    expect(callsTo(h.sandbox.calls(), OTP) - before).to.equal(0);
    expect(h.sandbox.admin.otpOutbox()).to.deep.equal([]);

    const { verify, otp } = await requestCode(send, r.email);
    expect((await post('otp/verify', { ...verify, code: otp }, 'https://evil.example')).status).to.equal(403);
    expect(await consents().list()).to.deep.equal([]);
  });

  it('offers no one-time code by default: the connect link redirects to Concur and the code routes do not exist', async () => {
    await start();
    const r = await submitted();
    const first = (await h.host.actions.act(tokenOf(r.id, r.email, 'approve'), chat(r.email))) as { url: string };
    const connect = await fetch(first.url.replace(PUBLIC_URL, h.host.url!), { redirect: 'manual' });
    expect(connect.status).to.equal(302);
    expect(connect.headers.get('location')).to.contain('/oauth2/v0/authorize?');
    const state = new URL(first.url).searchParams.get('state')!;
    expect((await post('otp/send', { state })).status).to.equal(404);
    expect((await post('otp/verify', { state, code: '12345678' })).status).to.equal(404);
    expect(h.sandbox.admin.otpOutbox()).to.deep.equal([]);
  });
});
