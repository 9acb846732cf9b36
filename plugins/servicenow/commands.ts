import type { CommandContribution } from '../../core/index.js';
import { serviceNowSandboxCommand } from './sandbox/index.js';

/** `approvals-hub sandbox servicenow`: a local ServiceNow instance for trials, tests and benchmarks (see sandbox/README.md). */
const commands: CommandContribution = (api) => serviceNowSandboxCommand(api);

export default commands;
