import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The README's "Add your own job type" shows the complete code of a real type: these files,
 * verbatim. The test keeps the two the same and type-checks the example with the project's
 * own compiler options, so the README cannot rot.
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

  it('compiles with the project’s compiler options', () => {
    const config = ts.readConfigFile(path.join(ROOT, 'tsconfig.json'), ts.sys.readFile);
    const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
    const program = ts.createProgram(FILES.map((f) => path.join(DIR, f)), { ...parsed.options, noEmit: true });
    const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(diagnostics).toEqual([]);
  }, 120_000);
});
