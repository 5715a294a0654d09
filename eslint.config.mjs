// Lint for what tsc does not catch: promises that are dropped, awaited when they are not
// promises, or handed where a callback's result is ignored. A small type-aware rule set on
// purpose; tsc (strict, noUnusedLocals) already covers types and unused names.
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['node_modules/', 'cdk.out/', 'cdk.out.*/', '.offload/', 'coverage/', 'bench/results/'] },
  {
    files: ['bin/**/*.ts', 'client/**/*.ts', 'scripts/**/*.ts', 'job-types/**/*.ts', 'examples/**/*.ts', 'lib/**/*.ts', 'lambda/**/*.ts', 'local/**/*.ts', 'cli/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'vitest.config.mts'],
    extends: [tseslint.configs.base],
    languageOptions: {
      // One program from tsconfig.json (the files tsc checks; the browser console has its own): faster and smaller here than
      // projectService, which took about 1.5x the CPU time and memory on this tree.
      parserOptions: { project: ['./tsconfig.json', './lambda/api/console/tsconfig.json'], tsconfigRootDir: import.meta.dirname },
    },
    // cli/output.ts keeps a directive for core's no-control-regex, which this set leaves off.
    linterOptions: { reportUnusedDisableDirectives: 'off' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
    },
  },
);
