export { ConcurSandbox, startConcurSandbox, type ConcurSandboxOptions, type SandboxCredentials } from './concur-sandbox.js';
export { SandboxAdmin, type SandboxState, type SandboxUserInfo, type V3Report } from './sandbox-admin.js';
export { callsTo, type CallCounts, type EndpointCalls } from './sandbox-calls.js';
export { SandboxClock } from './sandbox-clock.js';
export { APPROVAL_STATUS_NAMES, SandboxError, type ApproveOptions, type EditSpec, type ReportState, type SubmitSpec } from './sandbox-company.js';
export type { EntrySpec } from './sandbox-entries.js';
export type { DelegateSpec } from './sandbox-delegates.js';
export type { OtpMessage } from './sandbox-otp.js';
export { FAULT_PROFILES, type EndpointGroup, type FaultInput, type FaultOptions, type FaultProfileName, type SandboxDeprecation } from './sandbox-faults.js';
export { EXPENSE_TOPIC, type EssEvent } from './sandbox-event-facts.js';
export {
  isRetryableStatus,
  SandboxEvents,
  type DeliveryAttempt,
  type EventCounters,
  type EventFaultOptions,
  type EventSenderOptions,
  type SandboxEventsOptions,
} from './sandbox-event-sender.js';
export { MAX_SUBSCRIPTIONS, type WebhookSubscription } from './sandbox-event-subscriptions.js';
export { TEST_SIGNING_PRIVATE_KEY, TEST_SIGNING_PUBLIC_KEY } from './test-keys/test-signing-keys.js';
