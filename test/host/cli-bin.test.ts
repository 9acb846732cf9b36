import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

describe('the approvals-hub bin after a rebuild', function () {
  this.timeout(60_000);
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
  const bin = resolve(pkg.bin['approvals-hub']!);

  it('stays executable through an npm-style bin link once the build has run', async () => {
    const before = statSync(bin).mode & 0o777;
    // What the build leaves after `rm -rf dist && tsc`: tsc writes the CLI without the exec bit.
    chmodSync(bin, 0o644);
    try {
      const steps = pkg.scripts.build!.split('&&').map((s) => s.trim());
      const afterTsc = steps.slice(steps.indexOf('tsc') + 1);
      expect(afterTsc, 'build steps after tsc').to.not.be.empty;
      await run('sh', ['-c', afterTsc.join(' && ')]);

      expect(statSync(bin).mode & 0o111, `mode ${(statSync(bin).mode & 0o777).toString(8)}`).to.equal(0o111);
      // npm links a package's bin as a symlink in a bin directory on PATH (node_modules/.bin).
      const binDir = mkdtempSync(join(tmpdir(), 'ah-bin-'));
      symlinkSync(bin, join(binDir, 'approvals-hub'));
      const { stdout } = await run('sh', ['-c', 'approvals-hub --help'], { env: { ...process.env, PATH: `${binDir}${delimiter}${process.env.PATH}` } });
      expect(stdout).to.include('Usage: approvals-hub');
    } finally {
      chmodSync(bin, Math.max(before, statSync(bin).mode & 0o777));
    }
  });
});
