import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { configSchemaProblem } from '../../core/host/config-keywords.js';
import { ConfigError, loadDeployment } from '../../core/host/deployment.js';
import { scrubSecrets } from '../../core/host/logging.js';
import { PluginCatalog } from '../../core/host/plugin-catalog.js';
import * as core from '../../core/index.js';
import type { ConfigSchemaProperty } from '../../core/index.js';
import { runCli } from '../support/cli.js';

const fixture = (name: string): string => resolve(process.cwd(), 'test/fixtures', name);
const GREETER = fixture('greeter-plugin');
const BROKEN_COMMANDS = fixture('broken-commands-plugin');
const UNLOADABLE = fixture('unloadable-plugin');
const TYPO_SCHEMA = fixture('typo-schema-plugin');

/** Problem lines of a deployment loaded in process, or [] when it loads. */
function problems(raw: object, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    loadDeployment(undefined, { raw, env });
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

const greeterDeployment = (token: unknown) => ({
  plugins: [GREETER],
  queue: { adapter: 'memory' },
  sources: [{ id: 'greet', plugin: 'greeter-source', config: { token } }],
  notifiers: [],
});

describe('plugins from outside the repo: CLI commands', function () {
  this.timeout(60_000);
  let dir: string;
  let file: string;
  const env = { AH_TEST_GREETER_TOKEN: 'greeter-token-123' };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ah-plugins-'));
    file = join(dir, 'approvals.config.json');
    writeFileSync(file, JSON.stringify(greeterDeployment({ env: 'AH_TEST_GREETER_TOKEN' })));
  });

  it('registers the commands of a plugin named by --config <file>', async () => {
    const r = await runCli(['greeter', 'hello', '--config', file], { cwd: tmpdir(), env });
    expect(r.stderr).to.equal('');
    expect(r.code).to.equal(0);
    expect(r.stdout.trim()).to.equal('hello from greeter-source; sources: greet');
  });

  it('registers the commands of a plugin named by approvals.config.json in the working directory', async () => {
    const r = await runCli(['greeter', 'hello'], { cwd: dir, env });
    expect(r.stderr).to.equal('');
    expect(r.stdout.trim()).to.equal('hello from greeter-source; sources: greet');
  });

  it('resolves a relative plugin path against the deployment file, not the working directory', async () => {
    const location = relative(dir, GREETER);
    expect(location).to.match(/^\.\.\//);
    writeFileSync(file, JSON.stringify({ ...greeterDeployment({ env: 'AH_TEST_GREETER_TOKEN' }), plugins: [location] }));
    const r = await runCli(['greeter', 'hello', '--config', file], { cwd: tmpdir(), env });
    expect(r.stderr).to.equal('');
    expect(r.code).to.equal(0);
  });

  it('refuses to run with a plugin whose commands module cannot load, naming the plugin and the file', async () => {
    writeFileSync(file, JSON.stringify({ plugins: [BROKEN_COMMANDS], queue: { adapter: 'memory' }, notifiers: [{ id: 'b', plugin: 'broken-commands' }] }));
    const r = await runCli(['queue', 'list', '--config', file], { cwd: dir });
    expect(r.code, r.stderr).to.equal(2);
    expect(r.stdout).to.equal('');
    expect(r.stderr.trim()).to.equal(
      `plugin "broken-commands" (plugins[0]): commands module ${join(BROKEN_COMMANDS, 'commands.js')} cannot be loaded (Error: commands module of broken-commands cannot start)`,
    );
  });

  it('still runs built-in commands when the deployment file is malformed (the command reports it)', async () => {
    writeFileSync(file, '{ "plugins": [');
    const r = await runCli(['queue', 'list', '--config', file], { cwd: dir });
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/approvals\.config\.json: malformed JSON/);
  });
});

describe('plugin manifests: secret fields with a declared type', () => {
  it('accepts a secret reference in a field declared "type": "string", and hands the plugin the secret', () => {
    const d = loadDeployment(undefined, { raw: greeterDeployment({ env: 'AH_TEST_GREETER_TOKEN' }), env: { AH_TEST_GREETER_TOKEN: 'greeter-token-123' } });
    expect(d.sources[0]!.config).to.deep.equal({ token: 'greeter-token-123' });
  });

  it('still refuses a literal in that field, without printing it', () => {
    const lines = problems(greeterDeployment('literal-token-123'));
    expect(lines).to.deep.equal(['sources[0].config.token: must be a secret reference such as {"env": "NAME"} or {"file": "path"}, not a literal']);
  });

  it("checks the field's limits against the secret itself, never printing it", () => {
    const lines = problems(greeterDeployment({ env: 'AH_TEST_GREETER_TOKEN' }), { AH_TEST_GREETER_TOKEN: 'short' });
    expect(lines).to.deep.equal(['sources[0].config.token: the secret must be at least 8 characters long (it has 5)']);
  });

  it('says only that an unset variable is unset (no "is required" for the same field)', () => {
    expect(problems(greeterDeployment({ env: 'AH_TEST_UNSET_GREETER_TOKEN' }))).to.deep.equal([
      'sources[0].config.token: environment variable AH_TEST_UNSET_GREETER_TOKEN is not set',
    ]);
  });
});

describe('plugin manifests: strict configSchema', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ah-manifest-'));
  });

  it('refuses a manifest whose configSchema misspells "secret", naming the plugin, its manifest and the keyword', () => {
    const lines = problems({ plugins: [TYPO_SCHEMA], queue: { adapter: 'memory' }, notifiers: [] });
    expect(lines).to.deep.equal([
      `plugins[0]: plugin "typo-schema" (${join(TYPO_SCHEMA, 'plugin.json')}): configSchema uses unknown keyword "sekret" (JSON Schema keywords and the host's secret, httpsUrl, clockTime, timeZone only)`,
    ]);
  });

  it('refuses a manifest whose configSchema misspells "required"', () => {
    const manifest = JSON.parse(readFileSync(join(TYPO_SCHEMA, 'plugin.json'), 'utf8')) as { configSchema: Record<string, unknown> };
    const { required, ...rest } = manifest.configSchema;
    mkdirSync(join(dir, 'p'));
    writeFileSync(
      join(dir, 'p', 'plugin.json'),
      JSON.stringify({ ...manifest, configSchema: { ...rest, requried: required, properties: { token: { secret: true } } } }),
    );
    const lines = problems({ plugins: [join(dir, 'p')], queue: { adapter: 'memory' }, notifiers: [] });
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^plugins\[0\]: plugin "typo-schema" \(.*plugin\.json\): configSchema uses unknown keyword "requried"/);
  });

  it('accepts every built-in manifest in strict mode (the host skips the check for them at start)', () => {
    const manifests = ['plugins', 'adapters'].flatMap((root) =>
      readdirSync(root)
        .map((name) => join(root, name, 'plugin.json'))
        .filter((f) => existsSync(f)),
    );
    expect(manifests.length).to.be.greaterThan(5);
    const found = manifests.map((f) => [f, configSchemaProblem((JSON.parse(readFileSync(f, 'utf8')) as { configSchema: unknown }).configSchema)]);
    expect(found.filter(([, p]) => p !== undefined)).to.deep.equal([]);
  });

  it('exports a type for configSchema nodes that knows the host keywords and refuses misspelt ones', () => {
    const token: ConfigSchemaProperty = { type: 'string', secret: true, minLength: 8 };
    const url: ConfigSchemaProperty = { type: 'string', httpsUrl: true };
    // @ts-expect-error: `sekret` is not a keyword
    const typo: ConfigSchemaProperty = { sekret: true };
    expect(configSchemaProblem({ type: 'object', properties: { token, url } })).to.equal(undefined);
    expect(configSchemaProblem(typo)).to.match(/unknown keyword "sekret"/);
  });
});

describe('plugin modules: load errors and config validate', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ah-validate-'));
  });

  it('config validate imports each plugin entry: refuses one that cannot load, naming the plugin and the file', async () => {
    const file = join(dir, 'approvals.config.json');
    writeFileSync(
      file,
      JSON.stringify({ plugins: [UNLOADABLE], queue: { adapter: 'memory' }, sources: [{ id: 'u', plugin: 'unloadable-source' }], notifiers: [] }),
    );
    const r = await runCli(['config', 'validate', file], { cwd: dir });
    expect(r.code, r.stdout).to.equal(2);
    expect(r.stdout).to.equal('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(
      /^plugin "unloadable-source" \(plugins\[0\]\): entry \S+\/unloadable-plugin\/index\.js cannot be loaded \(Error: Cannot find package 'approvals-hub-test-no-such-package'/,
    );
  });

  it('config validate refuses a plugin named in plugins whose commands module cannot load, even when no instance uses it', async () => {
    const file = join(dir, 'approvals.config.json');
    writeFileSync(file, JSON.stringify({ plugins: [BROKEN_COMMANDS], queue: { adapter: 'memory' }, notifiers: [] }));
    const r = await runCli(['config', 'validate', file], { cwd: tmpdir() });
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include(`plugin "broken-commands" (plugins[0]): commands module ${join(BROKEN_COMMANDS, 'commands.js')} cannot be loaded`);
  });

  it('refuses an entry whose default export is not a module factory, naming the plugin and the file', async () => {
    mkdirSync(join(dir, 'p'));
    const manifest = JSON.parse(readFileSync(join(UNLOADABLE, 'plugin.json'), 'utf8')) as object;
    writeFileSync(join(dir, 'p', 'plugin.json'), JSON.stringify(manifest));
    writeFileSync(join(dir, 'p', 'index.js'), 'export default { not: "a function" };\n');
    const catalog = PluginCatalog.builtIn();
    const found: string[] = [];
    catalog.addLocation(join(dir, 'p'), dir, 'plugins[0]', found);
    expect(found).to.deep.equal([]);
    const error = await PluginCatalog.load(catalog.get('unloadable-source', 'source')!).catch((e: unknown) => e);
    expect((error as Error).message).to.equal(
      `plugin "unloadable-source" (plugins[0]): entry ${join(dir, 'p', 'index.js')} has no default export function (expected a PluginModuleFactory)`,
    );
  });

  it('config validate still says valid for a deployment whose plugins all load', async () => {
    const file = join(dir, 'approvals.config.json');
    writeFileSync(file, JSON.stringify(greeterDeployment({ env: 'AH_TEST_GREETER_TOKEN' })));
    const r = await runCli(['config', 'validate', file], { cwd: dir, env: { AH_TEST_GREETER_TOKEN: 'greeter-token-123' } });
    expect(r.stderr).to.equal('');
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/valid \(1 source\(s\), queue memory, notifiers \)/);
  });
});

describe('registerSecret in the public API', () => {
  it('is exported from the package entry', () => {
    expect(core.registerSecret).to.be.a('function');
  });

  it("keeps a value registered through a plugin's own copy of approvals-hub out of the host's output", async () => {
    const url = `${new URL('../../core/host/secret-registry.js', import.meta.url).href}?plugin-copy`;
    const copy = (await import(url)) as Pick<typeof core, 'registerSecret'>;
    expect(copy.registerSecret).not.to.equal(core.registerSecret);
    copy.registerSecret('plugin-access-token-4711');
    expect(scrubSecrets('upstream said: Bearer plugin-access-token-4711')).to.equal('upstream said: Bearer [REDACTED]');
  });
});
