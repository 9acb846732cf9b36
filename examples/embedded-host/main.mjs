// approvals-hub embedded in another Node.js program: one detection + delivery cycle against the
// in-process Concur sandbox, an SQLite queue in a temporary folder, and a channel of the program's
// own; then "what is waiting on me?" for one approver. It imports only the package's public API.
//
//   node main.mjs [approver-email]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { moneyText } from 'approvals-hub';
import { createHost } from 'approvals-hub/host';

const dir = mkdtempSync(join(tmpdir(), 'approvals-hub-example-'));

/** A channel of this program's own: it keeps the cards instead of sending them to a chat. */
const cards = [];
const inbox = {
  id: 'inbox',
  async deliver(message) {
    cards.push({ to: message.recipient.email, action: message.action, title: message.card.title });
    return { ref: message.idempotencyKey };
  },
};

const host = await createHost({
  // The deployment file's shape, as an object; validated exactly as `approvals-hub config validate` does.
  deployment: {
    queue: { adapter: 'sqlite', config: { path: join(dir, 'queue.db') } },
    sources: [{ id: 'concur-sandbox', plugin: 'concur', config: { sandbox: { reports: 6, approvers: 3, activitySeconds: 0 } } }],
    notifiers: [],
  },
  notifiers: [inbox],
  logLevel: 'warn',
});
try {
  const report = await host.runOnce();
  for (const line of report.summary) console.log(line);
  console.log(`cards handed to the inbox channel: ${cards.length}`);

  const approver = process.argv[2] ?? cards[0]?.to;
  if (!approver) throw new Error('the sandbox queued nothing');
  const waiting = await host.lookup.waitingOn(approver);
  console.log(`waiting on ${approver}: ${waiting.length}`);
  for (const a of waiting) console.log(`  ${a.key}  ${a.title}  ${moneyText(a.amount) ?? '-'}`);
} finally {
  await host.stop();
  rmSync(dir, { recursive: true, force: true });
}
