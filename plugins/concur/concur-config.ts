/** One Concur source instance's config, as validated against plugin.json (secrets resolved). */
export interface ConcurSourceConfig {
  readonly baseUrl?: string;
  readonly authBaseUrl: string;
  readonly clientId?: string;
  readonly clientSecret?: string;
  readonly refreshToken?: string;
  readonly requestToken?: string;
  readonly companyId?: string;
  readonly webHost: string;
  readonly pendingStatusCodes: readonly string[];
  readonly completionStatusCodes: readonly string[];
  readonly overlapSeconds: number;
  readonly pageSize: number;
  readonly enrich: boolean;
  /** Entries reads a cycle spends on the line items of a first sync's backlog; 0 = none. */
  readonly backfillCallsPerCycle: number;
  readonly timeoutSeconds: number;
  readonly maxAttempts: number;
  readonly identity: {
    readonly ttlHours: number;
    readonly bulkThreshold: number;
    readonly timeoutSeconds: number;
  };
  /** Run against an in-process Concur sandbox instead of Concur (the embedded default). */
  readonly sandbox?: {
    readonly reports: number;
    readonly approvers: number;
    readonly seed: number;
    readonly faults: string;
    /** Submit, approve and send back reports now and then, so a newcomer sees the queue move. */
    readonly activitySeconds: number;
  };
}
