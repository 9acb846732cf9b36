/** Fakes of core contracts for tests of plugins and adapters. */
export * from './manual-clock.js';
export * from './scripted-source.js';
export * from './recording-notifier.js';
