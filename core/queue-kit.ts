/**
 * `approvals-hub/queue-kit`: what a queue adapter outside this repository needs besides the
 * `ApprovalQueue` contract (in `approvals-hub`): the planner every adapter runs inside its commit
 * transaction, and the small rules the built-in adapters (memory, SQLite, PostgreSQL) share so
 * they cannot drift apart. Adapters in this repository import the same modules.
 */
export * from './pipeline/planner.js';
export * from './pipeline/queue-support.js';
