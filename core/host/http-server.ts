import { readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import type { HttpRoutes } from '../contracts/http-routes.js';
import type { Logger } from '../contracts/logger.js';
import type { Metrics } from '../contracts/metrics.js';
import { scrubSecrets } from './logging.js';

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  /** Present: the listener serves HTTPS. */
  readonly tls?: TlsSettings | undefined;
}

/**
 * `http.tls`: PEM files, paths already resolved. With `clientCaFile`, a client certificate is asked
 * for (and verified against that CA) but not required, so chat callbacks and the inbox keep working
 * without one; a route that needs one (the Concur event webhook) reads `socket.authorized` and the
 * peer certificate itself.
 */
export interface TlsSettings {
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientCaFile?: string | undefined;
}

/** The https options of a listener: each file read now, and an error naming the one that cannot be read. */
function httpsOptions(tls: TlsSettings): { cert: Buffer; key: Buffer; ca?: Buffer; requestCert: boolean; rejectUnauthorized: boolean } {
  const read = (setting: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new Error(`http.tls.${setting}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
  };
  const cert = read('certFile', tls.certFile);
  const key = read('keyFile', tls.keyFile);
  if (tls.clientCaFile === undefined) return { cert, key, requestCert: false, rejectUnauthorized: false };
  return { cert, key, ca: read('clientCaFile', tls.clientCaFile), requestCert: true, rejectUnauthorized: false };
}

export interface Readiness {
  readonly ready: boolean;
  readonly detail: Record<string, unknown>;
}

export interface HttpServer {
  readonly app: FastifyInstance;
  readonly url: string;
}

/** What the operations endpoints read. */
export interface Operations {
  readonly readiness: () => Promise<Readiness>;
  readonly metrics: Metrics;
}

/** Every string in `value`, scrubbed of registered secrets: `/readyz` carries error messages. */
function scrubbed(value: unknown): unknown {
  if (typeof value === 'string') return scrubSecrets(value);
  if (Array.isArray(value)) return value.map(scrubbed);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrubbed(v)]));
  return value;
}

function newApp(logger: Logger, tls?: TlsSettings): FastifyInstance {
  // The https instance differs from the plain one only in its server's type; routes see the same API.
  const app = (tls ? Fastify({ logger: false, trustProxy: true, https: httpsOptions(tls) }) : Fastify({ logger: false, trustProxy: true })) as FastifyInstance;
  // Fastify's own handler answers with the error's message, which may name a secret or an
  // internal detail: a server error is logged (scrubbed) and answered with its status only.
  app.setErrorHandler((error: { statusCode?: number; message?: string }, _req, reply) => {
    const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
    if (status >= 500) logger.error({ err: error.message ?? String(error) }, 'HTTP request failed');
    void reply.code(status).send({ statusCode: status, message: status >= 500 ? 'internal error' : scrubSecrets(error.message ?? '') });
  });
  return app;
}

function addOperations(app: FastifyInstance, ops: Operations): void {
  app.get('/readyz', async (_req, reply) => {
    const r = await ops.readiness();
    return reply.code(r.ready ? 200 : 503).send(scrubbed({ status: r.ready ? 'ready' : 'not ready', ...r.detail }));
  });
  app.get('/metrics', async (_req, reply) => reply.header('content-type', ops.metrics.contentType).send(await ops.metrics.render()));
}

async function listen(app: FastifyInstance, options: HttpServerOptions): Promise<string> {
  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (error) {
    await app.close().catch(() => undefined);
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return `${options.tls ? 'https' : 'http'}://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
}

/**
 * The host's public HTTP server: `/healthz` (the process answers) and every plugin's contributed
 * routes, plus `/readyz` (the queue answers and every source's last cycle succeeded) and
 * `/metrics` (Prometheus) when `operations` is given, i.e. when no admin listener serves them.
 */
export async function startHttpServer(
  routes: readonly HttpRoutes[],
  options: HttpServerOptions,
  operations: Operations | undefined,
  logger: Logger,
): Promise<HttpServer> {
  const app = newApp(logger, options.tls);
  app.get('/healthz', async () => ({ status: 'ok' }));
  if (operations) addOperations(app, operations);
  for (const r of routes) {
    await app.register(async (scope) => {
      await r.register(scope);
    });
  }
  const url = await listen(app, options);
  logger.info({ url, routes: routes.map((r) => r.id) }, 'HTTP server listening');
  return { app, url };
}

/** The admin listener (`http.admin`): `/healthz`, `/readyz` and `/metrics`, nothing a chat platform needs. */
export async function startAdminServer(options: HttpServerOptions, operations: Operations, logger: Logger): Promise<HttpServer> {
  const app = newApp(logger);
  app.get('/healthz', async () => ({ status: 'ok' }));
  addOperations(app, operations);
  const url = await listen(app, options);
  logger.info({ url }, 'admin HTTP server listening (/healthz, /readyz, /metrics)');
  return { app, url };
}
