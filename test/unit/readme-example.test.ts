import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The README's "Add your own job type" shows the complete code of a real type: these files,
 * verbatim. The test keeps the two the same; the example is part of the program `npm test`
 * type-checks before the tests run (tsc over tsconfig.json), so the README cannot rot.
 */
const ROOT = path.resolve(__dirname, '..', '..');
const DIR = path.join(ROOT, 'examples', 'job-types', 'send-email');
const FILES = ['definition.ts', 'worker.ts', 'index.ts'];

describe('README example job type', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

  it.each(FILES)('README shows examples/job-types/send-email/%s verbatim', (file) => {
    const code = fs.readFileSync(path.join(DIR, file), 'utf8').trimEnd();
    expect(readme).toContain(`// examples/job-types/send-email/${file}\n${code}\n`);
  });

  it('is type-checked with the project: examples/ is in tsconfig.json, which `npm test` compiles (npm run check, beside the tests)', () => {
    const config = ts.readConfigFile(path.join(ROOT, 'tsconfig.json'), ts.sys.readFile);
    const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
    for (const file of FILES) expect(parsed.fileNames).toContain(path.join(DIR, file));
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.scripts.test).toBe('node scripts/test.mjs');
    const script = fs.readFileSync(path.join(ROOT, 'scripts', 'test.mjs'), 'utf8');
    expect(script).toContain("run('npm', ['run', '--silent', 'check'])");
    expect(script).toContain('process.exit(check || tests)');
    expect(pkg.scripts.check).toContain('tsc --noEmit -p tsconfig.json');
  });
});
