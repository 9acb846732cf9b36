import type { TokenStore } from './sandbox-auth.js';
import type { FaultInjector } from './sandbox-faults.js';
import type { SandboxInstance } from './sandbox-instance.js';
import type { InvalidQueryMode, TieOrder } from './sandbox-query.js';
import type { SeededRandom } from './sandbox-random.js';

/** What the sandbox tells a list-page hook after it has worked out a page and before it sends it. */
export interface ListPageEvent {
  readonly table: string;
  readonly offset: number;
  readonly limit: number;
  /** Records matching the query (X-Total-Count). */
  readonly total: number;
  /** sys_ids on this page, in order. */
  readonly sysIds: readonly string[];
}

export type ListPageHook = (event: ListPageEvent) => void;

export interface SandboxSettings {
  readonly clientId: string;
  readonly clientSecret: string;
  /** user_name the client_credentials grant acts as (the OAuth application user). */
  readonly oauthApplicationUser: string;
  /** glide.oauth.inbound.client.credential.grant_type.enabled. */
  readonly clientCredentialsEnabled: boolean;
  readonly defaultLimit: number;
  readonly invalidQuery: InvalidQueryMode;
  readonly tieOrder: TieOrder;
  /** X-RateLimit-Limit on 429s. */
  readonly rateLimitPerHour: number;
}

/** Everything the routes and the admin API share. */
export interface SandboxContext {
  readonly instance: SandboxInstance;
  readonly tokens: TokenStore;
  readonly faults: FaultInjector;
  readonly settings: SandboxSettings;
  /** Salts the tie order of each listing. */
  readonly listingRng: SeededRandom;
  readonly calls: Map<string, number>;
  listHook: ListPageHook | undefined;
  baseUrl(): string;
}
