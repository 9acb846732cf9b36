export { ServiceNowSandbox, startServiceNowSandbox, type ServiceNowSandboxCredentials, type ServiceNowSandboxOptions } from './servicenow-sandbox.js';
export { ServiceNowSandboxAdmin, type CreateApprovalsSpec, type CreatedApprovals, type SandboxUser } from './sandbox-admin.js';
export type { ListPageEvent, ListPageHook } from './sandbox-context.js';
export { FAULT_PROFILES, type EndpointGroup, type FaultInput, type FaultOptions, type FaultProfileName } from './sandbox-faults.js';
export { SandboxError, type Row } from './sandbox-instance.js';
export type { InvalidQueryMode, TieOrder } from './sandbox-query.js';
export { APPROVAL_STATES } from './sandbox-schema.js';
export { glideDateTime } from './sandbox-clock.js';
export { serveServiceNowSandbox, serviceNowSandboxCommand } from './sandbox-command.js';
