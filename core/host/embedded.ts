/**
 * The deployment used when no file is given and none is in the working directory: an in-process
 * Concur sandbox as the source (polled every 10 s, swept every minute, with simulated activity),
 * an SQLite queue file in the working directory, and the console channel.
 */
export function embeddedDeployment(): Record<string, unknown> {
  return {
    queue: { adapter: 'sqlite', config: { path: 'approvals-hub.db' } },
    sources: [
      {
        id: 'concur-sandbox',
        plugin: 'concur',
        pollIntervalSeconds: 10,
        sweepIntervalSeconds: 60,
        config: { sandbox: { reports: 6, approvers: 3, activitySeconds: 15 } },
      },
    ],
    notifiers: [{ id: 'console', plugin: 'console' }],
  };
}
