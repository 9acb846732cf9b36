import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO = process.cwd();
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const TSC = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');

/**
 * The environment without the `npm_*` variables `npm test` sets (package and lifecycle settings of
 * this repository), so the nested npm and node runs see only the consumer folder's own.
 */
const ENV: NodeJS.ProcessEnv = { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name))), LOG_LEVEL: 'warn' };

/** Runs a command and returns its standard output; a failure carries its standard error. */
async function sh(cmd: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { cwd, maxBuffer: 32 * 1024 * 1024, env: ENV });
    return stdout;
  } catch (error) {
    const e = error as { message: string; stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${e.stderr ?? ''}\n${e.stdout ?? ''}\n${e.message}`);
  }
}

const write = (file: string, text: string): void => {
  mkdirSync(resolve(file, '..'), { recursive: true });
  writeFileSync(file, text);
};

/** A source plugin as a third party would write it: a folder with plugin.json and an ESM module importing only `approvals-hub`. */
function writeSourcePlugin(dir: string): void {
  write(
    join(dir, 'plugin.json'),
    JSON.stringify({
      id: 'static-source',
      version: '1.0.0',
      apiVersion: 1,
      kind: 'source',
      entry: './index.js',
      configSchema: { type: 'object', additionalProperties: false, required: ['approver'], properties: { approver: { type: 'string' } } },
    }),
  );
  write(
    join(dir, 'index.js'),
    `import { ContainerModule, ApprovalSource, approvalKey } from 'approvals-hub';

class StaticSource {
  capabilities = { actions: [] };
  constructor(id, approver) {
    this.id = id;
    this.approvals = ['PO-1', 'PO-2'].map((externalId, i) => ({
      key: approvalKey(id, 'request', externalId),
      source: id,
      kind: 'request',
      externalId,
      title: 'Purchase order ' + externalId,
      status: 'pending',
      requester: { name: 'Grace' },
      approvers: [{ sourceUserId: 'u-' + approver, email: approver }],
      amount: { value: String(100 + i), currency: 'EUR' },
      submittedAt: new Date().toISOString(),
      sourceUpdatedAt: new Date().toISOString(),
      links: { view: 'https://po.example.test/' + externalId },
    }));
  }
  async *changes(cursor) {
    if (cursor !== 'all') yield { approvals: this.approvals, cursor: 'all' };
  }
  async *listPending() {
    yield this.approvals;
  }
  async verify(refs) {
    return refs.map(({ externalId }) => {
      const approval = this.approvals.find((a) => a.externalId === externalId);
      return approval ? { found: true, approval } : { found: false, externalId };
    });
  }
}

export default function staticSourceModule(context) {
  const source = new StaticSource(context.instanceId, context.config.approver);
  return new ContainerModule(({ bind }) => bind(ApprovalSource).toConstantValue(source));
}
`,
  );
}

/** A notifier plugin that appends every message as a JSON line to a file. */
function writeNotifierPlugin(dir: string): void {
  write(
    join(dir, 'plugin.json'),
    JSON.stringify({
      id: 'jsonl-notifier',
      version: '1.0.0',
      apiVersion: 1,
      kind: 'notifier',
      entry: './index.js',
      configSchema: { type: 'object', additionalProperties: false, required: ['path'], properties: { path: { type: 'string' } } },
    }),
  );
  write(
    join(dir, 'index.js'),
    `import { appendFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ContainerModule, Notifier } from 'approvals-hub';

export default function jsonlNotifierModule(context) {
  const path = resolve(context.baseDir, context.config.path);
  const notifier = {
    id: context.instanceId,
    async deliver(message) {
      appendFileSync(path, JSON.stringify({ to: message.recipient.email, action: message.action, approval: message.card.approvalKey, title: message.card.title }) + '\\n');
      return { ref: message.idempotencyKey };
    },
  };
  return new ContainerModule(({ bind }) => bind(Notifier).toConstantValue(notifier));
}
`,
  );
}

/** A TypeScript consumer: it compiles only if every export's types resolve (and are not `any`). */
const CONSUMER_TS = `import { createHost, ConfigError, validateDeployment, type OnceSummary } from 'approvals-hub/host';
import { approvalKey, type Notifier, type QueuedApproval } from 'approvals-hub';
import { planBatch, normEmail } from 'approvals-hub/queue-kit';
import {
  ManualClock,
  checkApprovalSource,
  describeApprovalQueueContract,
  describeApprovalSource,
  describeNotifier,
  type ChannelDriver,
  type SourceDriver,
  type SourceKitResult,
} from 'approvals-hub/testing';

const inbox: Notifier = { id: 'inbox', deliver: async (message) => ({ ref: message.idempotencyKey }) };

export async function main(): Promise<number> {
  const host = await createHost({ deployment: { queue: { adapter: 'memory' }, notifiers: [] }, notifiers: [inbox], clock: new ManualClock(new Date()) });
  const report: OnceSummary = await host.runOnce();
  const waiting: QueuedApproval[] = await host.lookup.waitingOn('ada@example.test');
  const lines: readonly string[] = report.summary;
  // @ts-expect-error runOnce takes no argument
  await host.runOnce('now');
  // @ts-expect-error a deployment is a file path or an object
  await createHost({ deployment: 42 });
  await host.stop();
  const problems: readonly string[] = new ConfigError(['x']).problems;
  const key: string = approvalKey('s', 'request', 'x');
  const email: string | undefined = normEmail('A@B.C');
  const plan: (...args: never[]) => unknown = planBatch;
  const kits: readonly ((name: string, make: () => Promise<never>) => void)[] = [describeApprovalSource, describeNotifier, describeApprovalQueueContract];
  const drivers: readonly (SourceDriver | ChannelDriver)[] = [];
  // @ts-expect-error make returns the source under test and its driver
  const results: SourceKitResult[] = await checkApprovalSource(async () => ({ source: inbox }));
  return kits.length + drivers.length + results.length + lines.length + waiting.length + problems.length + key.length + (email ?? '').length + plan.length + validateDeployment.length;
}
`;

describe('the npm package, installed into an empty project', function () {
  // npm pack + an install from the npm cache (about 20 s here), then a few node processes.
  this.timeout(300_000);
  let dir: string;
  let app: string;
  let packed: string[];

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'ah-pack-'));
    const [info] = JSON.parse(await sh(NPM, ['pack', '--json', '--pack-destination', dir], REPO)) as { filename: string; files: { path: string }[] }[];
    packed = info!.files.map((f) => f.path);
    app = join(dir, 'app');
    write(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
    // --ignore-scripts: better-sqlite3 would otherwise compile its native module (minutes on CI);
    // the repository's own build of the same pinned version is copied in below instead.
    await sh(NPM, ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', '--loglevel=error', join(dir, info!.filename)], app);
    const ours = JSON.parse(readFileSync(join(REPO, 'node_modules/better-sqlite3/package.json'), 'utf8')) as { version: string };
    const theirs = JSON.parse(readFileSync(join(app, 'node_modules/better-sqlite3/package.json'), 'utf8')) as { version: string };
    expect(theirs.version, 'better-sqlite3 version').to.equal(ours.version);
    mkdirSync(join(app, 'node_modules/better-sqlite3/build/Release'), { recursive: true });
    cpSync(
      join(REPO, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'),
      join(app, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'),
    );
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('ships the compiled code, types and plugin manifests, and no tests', () => {
    expect(packed.filter((p) => p.startsWith('dist/test/') || p.startsWith('test/'))).to.deep.equal([]);
    expect(packed).to.include.members([
      'package.json',
      'README.md',
      'dist/core/index.d.ts',
      'dist/core/host/index.js',
      'dist/core/host/index.d.ts',
      'dist/core/host/cli.js',
      'dist/core/queue-kit.d.ts',
      'dist/core/testing/index.d.ts',
      'dist/plugins/concur/plugin.json',
      'dist/adapters/queue-sqlite/plugin.json',
    ]);
    const pkg = JSON.parse(readFileSync(join(app, 'node_modules/approvals-hub/package.json'), 'utf8')) as { exports: Record<string, unknown> };
    for (const [path, target] of Object.entries(pkg.exports)) {
      expect(target, `exports["${path}"]`).to.have.property('types');
      expect(existsSync(join(app, 'node_modules/approvals-hub', (target as { types: string }).types)), `${path} types file`).to.equal(true);
    }
  });

  it('runs an external source and notifier plugin through approvals-hub/host, and refuses deep imports', async () => {
    writeSourcePlugin(join(app, 'plugins/static-source'));
    writeNotifierPlugin(join(app, 'plugins/jsonl-notifier'));
    write(
      join(app, 'approvals.config.json'),
      JSON.stringify({
        plugins: ['./plugins/static-source', './plugins/jsonl-notifier'],
        queue: { adapter: 'memory' },
        sources: [{ id: 'purchasing', plugin: 'static-source', config: { approver: 'ada@example.test' } }],
        notifiers: [{ id: 'jsonl', plugin: 'jsonl-notifier', config: { path: 'cards.jsonl' } }],
      }),
    );
    write(
      join(app, 'run-plugins.mjs'),
      `import { createHost } from 'approvals-hub/host';
const host = await createHost({ deployment: './approvals.config.json', logLevel: 'warn' });
try {
  const report = await host.runOnce();
  const waiting = await host.lookup.waitingOn('ADA@example.test');
  let deep;
  try { await import('approvals-hub/dist/core/host/host.js'); deep = 'imported'; } catch (e) { deep = e.code; }
  console.log(JSON.stringify({ summary: report.summary, failures: report.failures, sources: host.sourceIds, notifiers: host.notifierIds, waiting: waiting.map((a) => a.key).sort(), deep }));
} finally {
  await host.stop();
}
`,
    );
    const result = JSON.parse(await sh(process.execPath, ['run-plugins.mjs'], app)) as Record<string, unknown>;
    expect(result).to.deep.equal({
      summary: ['purchasing: 2 new, 0 updated, 0 completed, 0 expired', 'delivered 2, retrying 0, dead 0'],
      failures: [],
      sources: ['purchasing'],
      notifiers: ['jsonl'],
      waiting: ['purchasing:request:PO-1', 'purchasing:request:PO-2'],
      deep: 'ERR_PACKAGE_PATH_NOT_EXPORTED',
    });
    const cards = readFileSync(join(app, 'cards.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { to: string; action: string; approval: string });
    expect(cards.map((c) => [c.to, c.action, c.approval]).sort()).to.deep.equal([
      ['ada@example.test', 'notify', 'purchasing:request:PO-1'],
      ['ada@example.test', 'notify', 'purchasing:request:PO-2'],
    ]);
  });

  it('runs the source kit from approvals-hub/testing without chai or fast-check installed', async () => {
    write(
      join(app, 'run-kit.mjs'),
      `import { ManualClock, ScriptedSource, checkApprovalSource } from 'approvals-hub/testing';
let chai;
try { await import('chai'); chai = 'installed'; } catch (e) { chai = e.code; }
const results = await checkApprovalSource(async () => {
  const clock = new ManualClock();
  const source = new ScriptedSource('purchasing', clock, 2);
  let n = 0;
  const driver = {
    submit: async () => source.submit('PO-' + ++n, { approvers: [{ sourceUserId: 'ada' }] }).externalId,
    change: async (id) => source.modify(id, 'Changed'),
    complete: async (id) => source.complete(id, 'approved'),
    reassign: async (id) => source.reassign(id, [{ sourceUserId: 'bob' }]),
    fail: async () => { source.failWith = new Error('outage'); },
    recover: async () => { source.failWith = undefined; },
    tick: async () => clock.advance(1000),
  };
  return { source, driver };
}, { batchSize: 2 });
console.log(JSON.stringify({ chai, cases: results.length, problems: results.flatMap((r) => r.problems) }));
`,
    );
    const result = JSON.parse(await sh(process.execPath, ['run-kit.mjs'], app)) as Record<string, unknown>;
    expect(result).to.deep.equal({ chai: 'ERR_MODULE_NOT_FOUND', cases: 8, problems: [] });
  });

  it('runs examples/embedded-host against the installed package', async () => {
    cpSync(join(REPO, 'examples/embedded-host/main.mjs'), join(app, 'main.mjs'));
    const out = await sh(process.execPath, ['main.mjs'], app);
    const lines = out.trim().split('\n');
    expect(lines[0]).to.match(/^concur-sandbox: 6 new, 0 updated, 0 completed, 0 expired$/);
    expect(lines).to.include('delivered 6, retrying 0, dead 0');
    expect(lines).to.include('cards handed to the inbox channel: 6');
    const waiting = lines.find((l) => l.startsWith('waiting on '));
    expect(waiting, out).to.match(/^waiting on \S+@\S+: [1-6]$/);
    expect(lines.filter((l) => l.startsWith('  concur-sandbox:expense-report:')).length).to.equal(Number(waiting!.split(': ')[1]));
  });

  for (const mode of [
    { module: 'NodeNext', moduleResolution: 'NodeNext' },
    { module: 'Node16', moduleResolution: 'Node16' },
    { module: 'ESNext', moduleResolution: 'Bundler' },
  ]) {
    it(`gives a TypeScript consumer (moduleResolution ${mode.moduleResolution}) the types of every export`, async () => {
      const project = join(app, `ts-${mode.moduleResolution.toLowerCase()}`);
      write(join(project, 'consumer.ts'), CONSUMER_TS);
      write(
        join(project, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            ...mode,
            target: 'ES2022',
            strict: true,
            noEmit: true,
            // NodeNext also checks the package's own declaration files (and its dependencies').
            skipLibCheck: mode.moduleResolution !== 'NodeNext',
            types: ['node'],
            typeRoots: [join(REPO, 'node_modules/@types')],
          },
          files: ['consumer.ts'],
        }),
      );
      await sh(process.execPath, [TSC, '-p', project], app);
    });
  }
});
