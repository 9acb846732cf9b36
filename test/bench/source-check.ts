// Micro-benchmark of the host's check on what a source yields (core/pipeline/source-output-check.ts):
// the cost per approval the first sync of 100,000 approvals pays. Run: npm run build && node dist/test/bench/source-check.js
import { checkApproval } from '../../core/pipeline/source-output-check.js';

const N = 100_000;
const at = (i: number) => new Date(Date.UTC(2026, 10, 1) + i * 1000).toISOString();
const approvals = Array.from({ length: N }, (_, i) => ({
  key: `acme:expense-report:R${i}`,
  source: 'acme',
  kind: 'expense-report',
  externalId: `R${i}`,
  title: `Q3 offsite ${i}`,
  status: 'pending',
  requester: { name: 'Requester', email: 'requester@example.test' },
  approvers: [{ sourceUserId: `approver${i % 50}@example.test`, name: 'Approver' }],
  amount: { value: `${(i % 5000) + 0.5}`.replace(/\.5$/, '.50'), currency: 'USD' },
  submittedAt: at(i),
  sourceUpdatedAt: at(i),
  links: { view: `https://www.concursolutions.com/goto/expense-report/R${i}` },
  content: { flags: [], lineItems: [{ label: 'Hotel', amount: { value: '120.00', currency: 'USD' } }] },
  sourceData: { reportId: `R${i}` },
}));

function run(): number {
  const started = process.hrtime.bigint();
  let bad = 0;
  for (const a of approvals) if (checkApproval('acme', a)) bad++;
  if (bad) throw new Error(`${bad} refused`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const compileStarted = process.hrtime.bigint();
checkApproval('acme', approvals[0]);
const compileMs = Number(process.hrtime.bigint() - compileStarted) / 1e6;
const runs = Array.from({ length: 7 }, run).sort((a, b) => a - b);
const median = runs[3]!;
console.log(`first call (compiles the schema): ${compileMs.toFixed(1)} ms`);
console.log(
  `${N} approvals: median ${median.toFixed(1)} ms of 7 runs (min ${runs[0]!.toFixed(1)}, max ${runs[6]!.toFixed(1)}) = ${((median * 1000) / N).toFixed(2)} µs per approval`,
);
