import type { ConcurSandbox } from '../../plugins/concur/sandbox/concur-sandbox.js';

/** A JSON body as the sandbox answers it. */
export interface Json {
  [key: string]: unknown;
}

/** A response from the sandbox over real HTTP: status, headers and the parsed body (undefined when empty). */
export interface Res<T = Json> {
  status: number;
  headers: Headers;
  body: T;
}

/** One HTTP call to the sandbox; the body is parsed as JSON when there is one. */
export async function call<T = Json>(url: string, init: RequestInit = {}): Promise<Res<T>> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as T };
}

/** A form POST to the sandbox's token endpoint with the app's client credentials and `params`. */
export function tokenRequest(sb: ConcurSandbox, params: Record<string, string>): Promise<Res> {
  const form = new URLSearchParams({ client_id: sb.credentials.clientId, client_secret: sb.credentials.clientSecret, ...params });
  return call(`${sb.baseUrl}/oauth2/v0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
  });
}
