/**
 * A pid file that keeps two benchmark runs apart: each run starts by removing what an earlier run
 * of the same kind left behind, which must never be another run's live setup. A lock whose owner
 * is gone (a run that died) is taken over.
 */
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { BenchError } from "./errors.js";

/** Takes the lock at `path` or throws a BenchError naming the live owner; `busy` says what to do instead. */
export async function takePidLock(path: string, busy: (ownerPid: number) => string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: "wx" });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = Number((await readFile(path, "utf8").catch(() => "")).trim());
      if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) throw new BenchError(busy(owner));
      await rm(path, { force: true }); // left by a run that died
    }
  }
  throw new BenchError(`cannot take the lock ${path}`);
}

export async function releasePidLock(path: string): Promise<void> {
  await rm(path, { force: true });
}

/** Whether a process exists (EPERM: it does, owned by someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
