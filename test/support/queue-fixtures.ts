/** The repo's own tests use the same fixtures as the queue contract kit (one copy, shipped in approvals-hub/testing). */
export * from '../../core/testing/kits/queue-fixtures.js';
