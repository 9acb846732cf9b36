/** Fakes of core contracts for tests of plugins and adapters, and the contract kits plugins run. */
export * from './manual-clock.js';
export * from './scripted-source.js';
export * from './recording-notifier.js';
export * from './kits/framework.js';
export * from './kits/checks.js';
export * from './kits/approval-source-kit.js';
export * from './kits/approval-queue-kit.js';
export * from './kits/notifier-kit.js';
