import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The repository's own config, run by `npm run lint:deps`. */
const CONFIG = resolve('.dependency-cruiser.cjs');
const DEPCRUISE = resolve('node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

/**
 * A core in miniature (model, contracts, pipeline, two entry points) and one adapter that imports it
 * the right way, so each test adds the one file that breaks a rule and the report names only it.
 */
const CORE: Record<string, string> = {
  'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }),
  'core/model/approval.ts': 'export interface Approval { readonly key: string }\n',
  'core/contracts/approval-queue.ts':
    "import type { Approval } from '../model/approval.js';\nexport interface ApprovalQueue { upsert(approval: Approval): Promise<void> }\n",
  'core/pipeline/planner.ts':
    "import type { Approval } from '../model/approval.js';\nexport function planBatch(approvals: readonly Approval[]): string[] { return approvals.map((a) => a.key); }\n",
  'core/index.ts': "export * from './model/approval.js';\nexport * from './contracts/approval-queue.js';\n",
  'core/queue-kit.ts': "export * from './pipeline/planner.js';\n",
  'adapters/queue-good/good-queue.ts':
    "import type { ApprovalQueue } from '../../core/index.js';\nimport { planBatch } from '../../core/queue-kit.js';\n" +
    'export const plan = planBatch;\nexport type Queue = ApprovalQueue;\n',
};

interface Outcome {
  readonly code: number;
  readonly output: string;
}

/** Runs dependency-cruiser as `npm run lint:deps` does (same config, same arguments) in `cwd`. */
async function depcruise(cwd: string, folders: readonly string[]): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(process.execPath, [DEPCRUISE, ...folders, '--config', CONFIG, '--ts-config', 'tsconfig.json'], { cwd });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

/** The check on a tree of `files` in a temporary folder. */
async function lintDeps(files: Record<string, string>): Promise<Outcome> {
  const dir = mkdtempSync(join(tmpdir(), 'ah-boundaries-'));
  try {
    for (const folder of ['core', 'plugins', 'adapters']) mkdirSync(join(dir, folder));
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    return await depcruise(dir, ['core', 'plugins', 'adapters']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the import boundary check (npm run lint:deps)', function () {
  this.timeout(60_000);

  it('runs dependency-cruiser with the repository config on the TypeScript sources', () => {
    const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts['lint:deps']).to.equal('depcruise core plugins adapters test --config .dependency-cruiser.cjs --ts-config tsconfig.json');
  });

  it('refuses a queue adapter that deep-imports core/pipeline/planner, naming the rule', async () => {
    const { code, output } = await lintDeps({
      ...CORE,
      'adapters/queue-deep/deep-queue.ts': "import { planBatch } from '../../core/pipeline/planner.js';\nexport const plan = planBatch;\n",
    });
    expect(code, output).to.not.equal(0);
    expect(output).to.include('error plugin-imports-core-internals: adapters/queue-deep/deep-queue.ts → core/pipeline/planner.ts');
    expect(output).to.not.include('adapters/queue-good/');
  });

  it('refuses a type-only deep import as much as a value import', async () => {
    const { code, output } = await lintDeps({
      ...CORE,
      'plugins/probe/probe-mapper.ts': "import type { Approval } from '../../core/model/approval.js';\nexport type Mapped = Approval;\n",
    });
    expect(code, output).to.not.equal(0);
    expect(output).to.include('error plugin-imports-core-internals: plugins/probe/probe-mapper.ts → core/model/approval.ts');
  });

  it('refuses a plugin that imports an adapter', async () => {
    const { code, output } = await lintDeps({
      ...CORE,
      'plugins/probe/probe-source.ts': "import { plan } from '../../adapters/queue-good/good-queue.js';\nexport const reuse = plan;\n",
    });
    expect(code, output).to.not.equal(0);
    expect(output).to.include('error plugin-imports-other-plugin: plugins/probe/probe-source.ts → adapters/queue-good/good-queue.ts');
  });

  it('refuses a contract that imports from core/pipeline (an upward arrow)', async () => {
    const { code, output } = await lintDeps({
      ...CORE,
      'core/contracts/clock.ts': "import type { planBatch } from '../pipeline/planner.js';\nexport interface Clock { plan: typeof planBatch }\n",
    });
    expect(code, output).to.not.equal(0);
    expect(output).to.include('error contracts-import-upward: core/contracts/clock.ts → core/pipeline/planner.ts');
  });

  it('refuses a core file that imports core/index.ts, and the cycle it makes', async () => {
    const { code, output } = await lintDeps({
      ...CORE,
      'core/model/approval.ts':
        "import type { ApprovalQueue } from '../index.js';\nexport interface Approval { readonly key: string; readonly queue?: ApprovalQueue }\n",
    });
    expect(code, output).to.not.equal(0);
    expect(output).to.include('error core-imports-own-entry-point: core/model/approval.ts → core/index.ts');
    expect(output).to.match(/error no-circular: .*core\/model\/approval\.ts/s);
  });

  it('passes on this repository', async () => {
    const { code, output } = await depcruise(process.cwd(), ['core', 'plugins', 'adapters', 'test']);
    expect(code, output).to.equal(0);
    expect(output).to.include('no dependency violations found');
  });
});
