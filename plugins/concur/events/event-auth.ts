import { constants, createPublicKey, publicDecrypt, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

/**
 * How `Concur-Signature` is read. Concur documents only that the header carries an RSA signature
 * and publishes the public keys (docs/concur-api.md 6.5); the default is our reading: PKCS#1 v1.5
 * with SHA-256 over the raw body bytes, base64. The others are there in case Concur's turns out otherwise.
 */
export type SignatureAlgorithm = 'RSA-SHA256' | 'RSA-SHA512' | 'RSA-PSS-SHA256';
export type SignatureEncoding = 'base64' | 'hex';
/**
 * Where Concur's client certificate is checked: `tls` on this host's own HTTPS listener (`http.tls`
 * with a `clientCaFile`); `proxy` in a TLS-terminating proxy in front, which passes the verified
 * subject in a header (and must drop that header from anything it did not verify); `off` not at all.
 */
export type ClientCertificateMode = 'tls' | 'proxy' | 'off';

export interface EventsAuthConfig {
  readonly signature: {
    /** `false`: an unsigned event, or one whose signature does not verify, is let through with a warning (while Concur's scheme is unconfirmed). */
    readonly required: boolean;
    /** PEM public keys (or certificates); a signature by any of them verifies, so both keys work during a rotation. */
    readonly publicKeyFiles: readonly string[];
    readonly algorithm: SignatureAlgorithm;
    readonly encoding: SignatureEncoding;
  };
  readonly clientCertificate: {
    readonly mode: ClientCertificateMode;
    /** `proxy` mode: the header holding the verified client certificate's subject (RFC 4514 `CN=…,O=…` or OpenSSL `/O=…/CN=…`). */
    readonly proxyHeader: string;
    readonly commonName: string;
    readonly organization: string;
  };
  /** Larger bodies are refused (413) before anything else is read. */
  readonly maxBodyBytes: number;
  /** An event whose `timeStamp` is older is refused as a replay: Concur stops retrying after 72 hours. */
  readonly maxAgeHours: number;
}

/** The settings as a deployment may give them: every field optional. */
export interface EventsAuthSettings {
  readonly signature?: Partial<EventsAuthConfig['signature']>;
  readonly clientCertificate?: Partial<EventsAuthConfig['clientCertificate']>;
  readonly maxBodyBytes?: number;
  readonly maxAgeHours?: number;
}

export const DEFAULT_EVENTS_AUTH: EventsAuthConfig = {
  signature: { required: true, publicKeyFiles: [], algorithm: 'RSA-SHA256', encoding: 'base64' },
  clientCertificate: { mode: 'off', proxyHeader: 'x-client-cert-subject', commonName: 'webhook.api.concursolutions.com', organization: 'SAP SE' },
  maxBodyBytes: 65_536,
  maxAgeHours: 73,
};

/** {@link DEFAULT_EVENTS_AUTH} with `settings` laid over it. */
export function eventsAuthConfig(settings: EventsAuthSettings = {}): EventsAuthConfig {
  return {
    signature: { ...DEFAULT_EVENTS_AUTH.signature, ...settings.signature },
    clientCertificate: { ...DEFAULT_EVENTS_AUTH.clientCertificate, ...settings.clientCertificate },
    maxBodyBytes: settings.maxBodyBytes ?? DEFAULT_EVENTS_AUTH.maxBodyBytes,
    maxAgeHours: settings.maxAgeHours ?? DEFAULT_EVENTS_AUTH.maxAgeHours,
  };
}

/** What a push is refused for; `reason` names the check that failed, for the answer, the log and the refusal count. */
export type EventVerdict =
  { readonly ok: true; readonly warning?: string | undefined } | { readonly ok: false; readonly status: 401 | 403 | 413; readonly reason: string };

/** What {@link EventAuthenticator.authenticate} reads of a request. */
export interface EventRequest {
  readonly body: Buffer;
  readonly headers: IncomingHttpHeaders;
  /** The connection: a `TLSSocket` when this host serves HTTPS. */
  readonly socket: Socket;
}

/** Future `timeStamp`s tolerated, for clock skew between Concur and this host. */
export const MAX_FUTURE_SKEW_MS = 5 * 60_000;

interface LoadedKey {
  readonly file: string;
  readonly key: KeyObject;
  /** Modulus length in bytes: the length of every signature the key makes. */
  readonly bytes: number;
}

const PSS = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO };

/**
 * Decides whether a push came from Concur: the body's size, Concur's client certificate (mode
 * `tls` or `proxy`), the `Concur-Signature` over the raw body by one of the configured keys, and
 * (once the body is parsed) that the event is not older than Concur would still send it. The
 * signature covers the body, so its `timeStamp` cannot be moved forward; a replay inside the window
 * has an event id the trigger store still remembers (four days), so it changes nothing.
 */
export class EventAuthenticator {
  private readonly keys: readonly LoadedKey[];

  /** Reads and parses every key file now: a missing file or bad PEM throws an error naming the file. */
  constructor(readonly config: EventsAuthConfig) {
    this.keys = config.signature.publicKeyFiles.map(loadKey);
    if (config.signature.required && this.keys.length === 0) {
      throw new Error('Concur events: signature.required is true but signature.publicKeyFiles names no key');
    }
  }

  /** Size, client certificate and signature; the event's age is {@link checkAge}'s, after parsing. */
  authenticate(request: EventRequest): EventVerdict {
    if (request.body.length > this.config.maxBodyBytes) {
      return { ok: false, status: 413, reason: `oversized: the body has ${request.body.length} bytes, more than ${this.config.maxBodyBytes}` };
    }
    const certificate = this.checkCertificate(request);
    if (certificate) return { ok: false, status: 403, reason: certificate };
    const signature = this.checkSignature(request);
    if (!signature) return { ok: true };
    if (this.config.signature.required) return { ok: false, status: 401, reason: signature };
    return { ok: true, warning: `${signature} (let through: signature.required is false)` };
  }

  /** Refuses an event issued more than `maxAgeHours` ago (a replay; Concur has stopped retrying it) or more than 5 minutes ahead. */
  checkAge(timeStamp: string, now: Date): EventVerdict {
    const at = Date.parse(timeStamp);
    const age = now.getTime() - at;
    if (Number.isNaN(at)) return { ok: false, status: 401, reason: `too old: timeStamp ${JSON.stringify(timeStamp)} is not a date` };
    if (age > this.config.maxAgeHours * 3_600_000) {
      return { ok: false, status: 401, reason: `too old or replayed: issued ${timeStamp}, more than ${this.config.maxAgeHours} hours ago` };
    }
    if (-age > MAX_FUTURE_SKEW_MS) return { ok: false, status: 401, reason: `timeStamp ${timeStamp} is more than 5 minutes in the future` };
    return { ok: true };
  }

  /** Why the client certificate is not Concur's, or undefined when it is (or is not checked). */
  private checkCertificate(request: EventRequest): string | undefined {
    const { mode, commonName, organization, proxyHeader } = this.config.clientCertificate;
    if (mode === 'off') return undefined;
    let subject: Record<string, string[]>;
    if (mode === 'proxy') {
      const header = request.headers[proxyHeader.toLowerCase()];
      const text = Array.isArray(header) ? header[0] : header;
      if (!text) return `no client certificate: the proxy sent no ${proxyHeader} header`;
      subject = parseSubject(text);
    } else {
      const socket = request.socket;
      if (!(socket instanceof TLSSocket)) return 'no client certificate: the listener does not serve HTTPS (set http.tls with a clientCaFile)';
      const peer = socket.getPeerCertificate();
      if (!peer || Object.keys(peer).length === 0) return 'no client certificate';
      if (!socket.authorized) return `client certificate not trusted: ${String(socket.authorizationError ?? 'not signed by the clientCaFile authority')}`;
      subject = Object.fromEntries(Object.entries(peer.subject ?? {}).map(([k, v]) => [k, Array.isArray(v) ? v : [String(v)]]));
    }
    const cn = subject['CN'] ?? [];
    const o = subject['O'] ?? [];
    if (cn.length !== 1 || cn[0] !== commonName) return `wrong client certificate CN: ${JSON.stringify(cn.join(', '))}, expected ${JSON.stringify(commonName)}`;
    if (o.length !== 1 || o[0] !== organization) return `wrong client certificate O: ${JSON.stringify(o.join(', '))}, expected ${JSON.stringify(organization)}`;
    return undefined;
  }

  /** Why `Concur-Signature` does not verify, or undefined when one of the keys verifies it. */
  private checkSignature(request: EventRequest): string | undefined {
    const header = request.headers['concur-signature'];
    const text = (Array.isArray(header) ? header[0] : header)?.trim();
    if (!text) return 'unsigned: no Concur-Signature header';
    if (this.keys.length === 0) return 'unknown key: no public key is configured';
    const { algorithm, encoding } = this.config.signature;
    const signature = decode(text, encoding);
    if (!signature) return `malformed signature header: not ${encoding}`;
    const sized = this.keys.filter((k) => k.bytes === signature.length);
    if (sized.length === 0) {
      const lengths = [...new Set(this.keys.map((k) => k.bytes))].join(' or ');
      return `malformed signature header: ${signature.length} bytes, where the configured keys sign ${lengths}`;
    }
    const hash = algorithm === 'RSA-SHA512' ? 'sha512' : 'sha256';
    for (const { key } of sized) {
      if (verify(hash, request.body, algorithm === 'RSA-PSS-SHA256' ? { key, ...PSS } : key, signature)) return undefined;
    }
    // PKCS#1 v1.5 lets a key recover what it signed: a key that recovers a well-padded digest made
    // this signature, so the body is not the one signed; none does: someone else's key (or noise).
    if (algorithm !== 'RSA-PSS-SHA256' && !sized.some(({ key }) => recovers(key, signature))) {
      return 'unknown key: the signature is not by any configured key';
    }
    return 'bad signature: it does not match the body';
  }
}

/** The key in `file`; an error naming the file when it cannot be read or is not an RSA public key (or certificate) in PEM. */
function loadKey(file: string): LoadedKey {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`Concur events: cannot read public key file ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch (error) {
    throw new Error(`Concur events: ${file} is not a PEM public key or certificate (${(error as Error).message})`);
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if ((key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'rsa-pss') || !bits) {
    throw new Error(`Concur events: ${file} holds a ${key.asymmetricKeyType ?? 'non-RSA'} key; Concur signs with RSA`);
  }
  return { file, key, bytes: Math.ceil(bits / 8) };
}

function decode(text: string, encoding: SignatureEncoding): Buffer | undefined {
  if (encoding === 'hex') return /^(?:[0-9a-fA-F]{2})+$/.test(text) ? Buffer.from(text, 'hex') : undefined;
  // Standard or URL-safe alphabet, padding optional.
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.length > 0 ? bytes : undefined;
}

/** Whether `key` opens `signature` to PKCS#1 v1.5 signature padding (the signer held its private half). */
function recovers(key: KeyObject, signature: Buffer): boolean {
  try {
    publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, signature);
    return true;
  } catch {
    return false;
  }
}

/**
 * A certificate subject as a proxy passes it: RFC 4514 (`CN=a,O=SAP SE,C=DE`, commas escaped with
 * a backslash) or OpenSSL's one-line form (`/C=DE/O=SAP SE/CN=a`). Attribute names upper-cased.
 */
export function parseSubject(text: string): Record<string, string[]> {
  const parts = text.startsWith('/') ? text.slice(1).split('/') : text.split(/(?<!\\),/);
  const out: Record<string, string[]> = {};
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim().toUpperCase();
    const value = part
      .slice(eq + 1)
      .trim()
      .replace(/\\(.)/g, '$1');
    (out[name] ??= []).push(value);
  }
  return out;
}
