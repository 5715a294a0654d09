import * as fs from 'node:fs';
import * as path from 'node:path';
/** Whether a process with this id is running (on this machine, visible to this user or not). */
export function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One try at a lock folder holding this process's id: a release function when taken;
 * undefined when another live process holds it. A lock whose holder died (or that shows no
 * holder after 10 s) is removed on the way, so the next try can take it.
 */
export function tryLock(lock: string): (() => void) | undefined {
  try {
    fs.mkdirSync(lock);
    fs.writeFileSync(path.join(lock, 'pid'), String(process.pid));
    return () => fs.rmSync(lock, { recursive: true, force: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  let holder = 0;
  let since = Date.now();
  try {
    since = fs.statSync(lock).mtimeMs;
    holder = Number(fs.readFileSync(path.join(lock, 'pid'), 'utf8')) || 0;
  } catch {
    // being created or removed right now
  }
  if (holder ? !alive(holder) : Date.now() - since > 10_000) fs.rmSync(lock, { recursive: true, force: true });
  return undefined;
}
