// `npm test`: the type check and lint (`npm run check`, silent when clean) and the vitest
// projects, side by side rather than one after the other: the check needs ~35 s of CPU that
// the test run's first minute (mostly waiting on the e2e instances' synth and deploy) can
// spare. Fails when either fails; extra arguments go to vitest.
import { spawn } from 'node:child_process';

const run = (cmd, args) =>
  new Promise((resolve) => {
    spawn(cmd, args, { stdio: 'inherit' }).on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });

const [check, tests] = await Promise.all([run('npm', ['run', '--silent', 'check']), run('npx', ['vitest', 'run', ...process.argv.slice(2)])]);
if (check !== 0) console.error(`npm run check failed (exit ${check})`);
process.exit(check || tests);
