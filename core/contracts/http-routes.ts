import type { FastifyInstance } from 'fastify';
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
