import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a proxy rule sees of one request. */
export interface ProxiedRequest {
  readonly method: string;
  /** Path and query, as sent. */
  readonly url: string;
  readonly body: string;
}

export interface ProxyRules {
  /** A status to answer instead of forwarding (e.g. 503), `hang` to never answer, or undefined to forward. */
  readonly refuse?: (request: ProxiedRequest) => number | 'hang' | undefined;
  /** Rewrites a forwarded response body, after the sandbox's URL in it became the proxy's. */
  readonly rewrite?: (body: string, proxyUrl: string) => string;
}

export interface ConcurProxy {
  /** Base URL to configure instead of the sandbox's. */
  readonly url: string;
  /** Where requests go; set once the sandbox is up. */
  target: string;
  rules: ProxyRules;
  close(): Promise<void>;
}

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });

/**
 * A loopback HTTP proxy in front of the Concur sandbox for faults the sandbox's random profiles
 * cannot aim: refusing chosen requests, or tampering with what comes back.
 */
export async function startConcurProxy(rules: ProxyRules = {}): Promise<ConcurProxy> {
  let server: Server | undefined;
  const proxy: ConcurProxy = {
    url: '',
    target: '',
    rules,
    close: () =>
      new Promise((resolve) => {
        if (!server) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const request: ProxiedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', body };
      const refused = proxy.rules.refuse?.(request);
      if (refused === 'hang') return; // the socket is held until the client gives up or the proxy closes
      if (refused !== undefined) {
        res.writeHead(refused, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ Message: `refused by the test proxy with ${refused}` }));
        return;
      }
      const upstream = await fetch(`${proxy.target}${request.url}`, {
        method: request.method,
        headers: Object.fromEntries(
          Object.entries(req.headers)
            .filter(([k]) => k !== 'host' && k !== 'content-length')
            .map(([k, v]) => [k, String(v)]),
        ),
        body: request.method === 'GET' || request.method === 'HEAD' ? undefined : body,
      });
      // Links the sandbox hands out (geolocation, NextPage) lead back through the proxy.
      const text = (await upstream.text()).replaceAll(proxy.target, proxy.url);
      res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
      res.end(proxy.rules.rewrite ? proxy.rules.rewrite(text, proxy.url) : text);
    })().catch((error: Error) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`test proxy: ${error.message}`);
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  (proxy as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
