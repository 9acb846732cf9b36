import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServiceIdentifier } from '../di.js';

/**
 * Routes a plugin serves from the host's HTTP server (chat callbacks, the web inbox, the Concur
 * event webhook). Multi-bound; each contribution registers under its own path prefix. The host
 * serves `/healthz`, `/readyz` and `/metrics` itself.
 */
export interface HttpRoutes {
  /** Unique among contributions; used in logs and errors. */
  readonly id: string;
  register(app: FastifyInstance): void | Promise<void>;
}
export const HttpRoutes: ServiceIdentifier<HttpRoutes> = Symbol.for('approvals.core.HttpRoutes');

/** Text made safe inside HTML, text or attribute: the five characters that could start markup or end a value, as entities. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * Whether a POST came from a page this host served (the CSRF check of its own forms and APIs): the
 * browser's `Origin` is `publicOrigin` (the origin people reach the host at) or the one the request
 * was addressed to, and `Sec-Fetch-Site`, when sent, says same-origin. A request with neither header
 * is refused: every browser that can run the page sends at least one of them on a form post, and a
 * page on another site can forge neither.
 */
export function isSameOriginPost(request: Pick<FastifyRequest, 'headers' | 'protocol' | 'host'>, publicOrigin: string): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  const origin = request.headers.origin;
  if (origin === undefined || origin === 'null') return site === 'same-origin';
  return origin === publicOrigin || origin === `${request.protocol}://${request.host}`;
}
