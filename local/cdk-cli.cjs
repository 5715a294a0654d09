'use strict';
/**
 * The CDK CLI, loaded ahead of its run. Loading the CLI's bundle is most of a `cdk deploy`
 * against the emulator (~1.5 s of CPU), and it needs nothing from the emulator, so local
 * mode starts this process while moto starts, and says what to run once the emulator and
 * the cloud assembly are ready. The run itself is exactly `node_modules/.bin/cdk <args>`:
 * the same entry point (`require('aws-cdk/lib').cli`), arguments and environment.
 *
 * argv: <path of aws-cdk/lib>
 * IPC: sends { type: 'loaded' }; then receives { type: 'run', args, env }, disconnects and runs.
 */
process.setSourceMapsEnabled(true);
const { cli } = require(process.argv[2]);

process.once('message', (msg) => {
  if (!msg || msg.type !== 'run') return process.exit(2);
  for (const key of Object.keys(process.env)) delete process.env[key];
  Object.assign(process.env, msg.env);
  process.argv = [process.argv[0], 'cdk', ...msg.args];
  process.disconnect();
  cli(msg.args);
});
process.send({ type: 'loaded' });
