/**
 * `approvals-hub/queue-kit`: what a queue adapter outside this repository needs besides the
 * `ApprovalQueue` contract (in `approvals-hub`): the planner every adapter runs inside its commit
 * transaction, and the small rules the built-in adapters (memory, SQLite, PostgreSQL) share so
 * they cannot drift apart. The adapters in this repository import it as a third party would
 * (`../../core/queue-kit.js`), and `npm run lint:deps` keeps them from reaching past it.
 */
export * from './pipeline/planner.js';
export * from './pipeline/queue-support.js';
