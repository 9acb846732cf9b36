import type { DeliveryReceipt } from '../model/queue-types.js';
import type { Notifier, OutboundMessage } from '../contracts/notifier.js';

/** A notifier that keeps every message it was handed, and can be made to fail. */
export class RecordingNotifier implements Notifier {
  readonly messages: OutboundMessage[] = [];
  failing: Error | undefined;
  private next = 0;

  constructor(readonly id = 'recording') {}

  async deliver(message: OutboundMessage): Promise<DeliveryReceipt> {
    if (this.failing) throw this.failing;
    this.messages.push(message);
    return message.previous ?? { ref: `${this.id}-${++this.next}` };
  }

  /** Messages for one approver and approval, in order. */
  for(email: string, approvalKey?: string): OutboundMessage[] {
    return this.messages.filter((m) => m.recipient.email === email && (!approvalKey || m.card.approvalKey === approvalKey));
  }
}
