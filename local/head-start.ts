import { PreloadedCdk } from './cdk-process';
import { freePort, resolveEmulator, startMoto, type Emulator } from './emulator';

/**
 * What local mode starts before the rest of it loads: moto (unless AWS_ENDPOINT_URL names
 * an endpoint) and the CDK CLI that will deploy. Both take a second or more of CPU that
 * needs nothing else, so they overlap local mode's own module loading (the AWS SDK
 * clients, ~0.7 s) and, on a first start, the synth. This module stays light on purpose:
 * local/main.ts loads it, calls headStart(), and only then loads the rest.
 */
export interface HeadStart {
  startedAt: number;
  /** The endpoint of the moto being started here (known before it answers); undefined with AWS_ENDPOINT_URL. */
  motoEndpoint?: Promise<string>;
  emulator: Promise<Emulator>;
  /** The CDK CLI, loaded and waiting for the deploy's arguments. */
  cli: PreloadedCdk;
}

export function headStart(log: (line: string) => void = (l) => console.log(l)): HeadStart {
  const startedAt = Date.now();
  const cli = new PreloadedCdk('deploy', (l) => log(`[local] ${l}`));
  const progress = (l: string) => log(`[local] ${l}`);
  if (process.env.AWS_ENDPOINT_URL) {
    const emulator = resolveEmulator({ progress });
    emulator.catch(() => undefined); // handled by whoever awaits it
    return { startedAt, emulator, cli };
  }
  const port = freePort();
  const emulator = port.then((p) => startMoto({ port: p, progress }));
  emulator.catch(() => undefined);
  port.catch(() => undefined);
  return { startedAt, motoEndpoint: port.then((p) => `http://localhost:${p}`), emulator, cli };
}
