/** The public API of approvals-hub's core: contracts, model, DI names and plugin API. */
export * from './di.js';
export * from './model/approval.js';
export * from './model/card.js';
export * from './model/queue-types.js';
export * from './contracts/approval-queue.js';
export * from './contracts/approval-source.js';
export * from './contracts/identity-directory.js';
export * from './contracts/notifier.js';
export * from './contracts/clock.js';
export * from './contracts/logger.js';
export * from './pipeline/planner.js';
export { createCardRenderer, kindTitle } from './pipeline/card-renderer.js';
export * from './host/plugin-api.js';
export * from './model/public-json.js';
export * from './contracts/http-routes.js';
export * from './contracts/approval-lookup.js';
export * from './contracts/delivery-feed.js';
export * from './contracts/metrics.js';
