import type { ConcurSandbox } from '../../plugins/concur/sandbox/index.js';

/** The sandbox consent page's form: where it posts, and its hidden fields (HTML-unescaped). */
export function consentForm(html: string): { action: string; fields: Record<string, string> } {
  const action = /<form method="post" action="([^"]+)">/.exec(html)?.[1];
  if (!action) throw new Error(`no consent form in: ${html.slice(0, 200)}`);
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[m[1]!] = m[2]!
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&amp;/g, '&');
  }
  return { action, fields };
}

/** The steps of one "Connect your Concur account", as a browser takes them, for tests to look at. */
export interface ConsentSteps {
  /** The host's redirect to Concur's authorize page. */
  readonly authorize: URL;
  /** The host callback's answer. */
  readonly status: number;
  readonly html: string;
}

/**
 * Follows a consent URL as a browser does (redirects by hand): the host's connect route, the
 * sandbox's consent page signed in as `login` and allowed, then the host's callback. `local`
 * maps the public URL the host puts in links to the address it really listens on.
 */
export async function connectAs(sandbox: ConcurSandbox, url: string, login: string, local: (url: string) => string): Promise<ConsentSteps> {
  const connect = await fetch(local(url), { redirect: 'manual' });
  if (connect.status !== 302) throw new Error(`the connect route answered ${connect.status}: ${await connect.text()}`);
  const authorize = new URL(connect.headers.get('location')!);
  const page = await fetch(authorize, { redirect: 'manual' });
  if (page.status !== 200) throw new Error(`the consent page answered ${page.status}`);
  const form = consentForm(await page.text());
  const allowed = await fetch(`${sandbox.baseUrl}${form.action}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...form.fields, loginId: login, decision: 'allow' }).toString(),
  });
  if (allowed.status !== 302) throw new Error(`the consent form answered ${allowed.status}`);
  const callback = await fetch(local(allowed.headers.get('location')!), { redirect: 'manual' });
  return { authorize, status: callback.status, html: await callback.text() };
}
