import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A resolve hook (registered with `module.register`) that appends every URL the child resolves to a file. */
const HOOKS = `import { appendFileSync } from 'node:fs';
let log;
export async function initialize(data) { log = data.log; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(log, result.url + '\\n');
  return result;
}
`;

/** Registers the hook, then imports the module given on the command line, as the host's plugin catalog does. */
const MAIN = `import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
const [hooks, log, target] = process.argv.slice(2);
register(pathToFileURL(hooks), { data: { log } });
await import(target);
`;

/** Every URL a fresh Node process resolves while importing `module` (a path under dist/). */
async function urlsLoadedBy(module: string): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'concur-loading-'));
  try {
    writeFileSync(join(dir, 'hooks.mjs'), HOOKS);
    writeFileSync(join(dir, 'main.mjs'), MAIN);
    const log = join(dir, 'resolved.log');
    writeFileSync(log, '');
    const target = new URL(module, new URL('../../', import.meta.url)).href;
    await run(process.execPath, [join(dir, 'main.mjs'), join(dir, 'hooks.mjs'), log, target], { timeout: 60_000 });
    return readFileSync(log, 'utf8').split('\n').filter(Boolean);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const SANDBOX_DIR = new URL('../../plugins/concur/sandbox/', import.meta.url).href;

describe('Concur plugin module loading', () => {
  it('does not load any file of the Concur sandbox when a fresh process imports the Concur module', async () => {
    const urls = await urlsLoadedBy('plugins/concur/concur-module.js');
    // The hook saw the module's own imports, so an empty sandbox list below means something.
    expect(urls).to.include(new URL('../../plugins/concur/concur-approval-source.js', import.meta.url).href);
    expect(
      urls.filter((u) => u.startsWith(SANDBOX_DIR)),
      `sandbox files loaded from ${fileURLToPath(SANDBOX_DIR)}`,
    ).to.deep.equal([]);
  });

  it('loads the sandbox through the embedded-mode module, which the Concur module imports only when `sandbox` is set', async () => {
    const urls = await urlsLoadedBy('plugins/concur/sandbox-mode.js');
    expect(urls.filter((u) => u.startsWith(SANDBOX_DIR))).to.include(new URL('index.js', SANDBOX_DIR).href);
  });
});
