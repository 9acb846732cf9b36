import type { ServiceIdentifier } from '../../core/index.js';

/** One web inbox instance's settings, from its validated config (module.ts builds them). */
export interface WebInboxSettings {
  readonly instanceId: string;
  /** HMAC key for links and session cookies; rotating it signs everyone out. */
  readonly signingKey: string;
  /** How long a sign-in link works (once). */
  readonly linkTtlMs: number;
  /** At most one link a person asked for ("Send me a new link") per this long, per address. */
  readonly linkRequestIntervalMs: number;
  /** How long a session lasts after sign-in. */
  readonly sessionTtlMs: number;
  /** Where people reach the host, without a trailing slash; sign-in links start with it. */
  readonly publicUrl: string;
}
export const WebInboxSettings: ServiceIdentifier<WebInboxSettings> = Symbol.for('approvals.web.WebInboxSettings');
