import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Test-only keys and certificates (test/fixtures/ess/README.md). */
export const ESS_FIXTURES = resolve(process.cwd(), 'test/fixtures/ess');
export const SIGNING_PUBLIC_KEY = join(ESS_FIXTURES, 'signing-public.pem');

/** A Concur `public.concur.expense.report` event for a sandbox report, shaped like Concur's documented samples. */
export function reportEvent(
  report: { ID: string; LastModifiedDate?: string | null | undefined },
  options: { eventType?: string; id?: string; timeStamp?: Date; assignedUserId?: string } = {},
): Buffer {
  const envelope = {
    id: options.id ?? randomUUID(),
    correlationId: randomUUID(),
    route: 'stable',
    eventType: options.eventType ?? 'statusChanged',
    topic: 'public.concur.expense.report',
    timeStamp: (options.timeStamp ?? new Date()).toISOString(),
    facts: {
      reportId: report.ID,
      currentApprovalStatus: 'A_PEND',
      previousApprovalStatus: 'A_NOTF',
      stepCode: 'MANAGER',
      lastModifiedDate: report.LastModifiedDate ? `${report.LastModifiedDate.replace(/Z$/, '')}Z` : undefined,
      startingStep: { roleCode: 'MANAGER', stepInstances: options.assignedUserId ? [{ id: randomUUID(), assignedUserId: options.assignedUserId }] : [] },
    },
  };
  return Buffer.from(JSON.stringify(envelope));
}

/** `Concur-Signature` as the receiver reads it by default: base64 RSA PKCS#1 v1.5 SHA-256 over the raw body. */
export function signWith(body: Buffer, keyName: 'signing' | 'rotated' | 'unknown' = 'signing'): string {
  const key = createPrivateKey(readFileSync(join(ESS_FIXTURES, `${keyName}-private.pem`)));
  return sign('sha256', body, key).toString('base64');
}

/** POSTs an event body; `signature: false` sends none. Resolves the status and JSON answer. */
export async function postEvent(
  url: string,
  body: Buffer,
  options: { signature?: string | false; correlationId?: string } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const signature = options.signature === undefined ? signWith(body) : options.signature;
  if (signature !== false) headers['concur-signature'] = signature;
  if (options.correlationId) headers['concur-correlationid'] = options.correlationId;
  const response = await fetch(url, { method: 'POST', headers, body });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}
