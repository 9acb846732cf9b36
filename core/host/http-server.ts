import Fastify, { type FastifyInstance } from 'fastify';
import type { HttpRoutes } from '../contracts/http-routes.js';
import type { Logger } from '../contracts/logger.js';
import type { Metrics } from '../contracts/metrics.js';

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
}

export interface Readiness {
  readonly ready: boolean;
  readonly detail: Record<string, unknown>;
}

/**
 * The host's HTTP server: `/healthz` (the process answers), `/readyz` (the queue answers and every
 * source's last cycle succeeded), `/metrics` (Prometheus), and every plugin's contributed routes.
 */
export async function startHttpServer(
  routes: readonly HttpRoutes[],
  options: HttpServerOptions,
  readiness: () => Promise<Readiness>,
  metrics: Metrics,
  logger: Logger,
): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({ logger: false, trustProxy: true });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const r = await readiness();
    return reply.code(r.ready ? 200 : 503).send({ status: r.ready ? 'ready' : 'not ready', ...r.detail });
  });
  app.get('/metrics', async (_req, reply) => reply.header('content-type', metrics.contentType).send(await metrics.render()));
  for (const r of routes) {
    await app.register(async (scope) => {
      await r.register(scope);
    });
  }
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  logger.info({ url, routes: routes.map((r) => r.id) }, 'HTTP server listening');
  return { app, url };
}
