/**
 * Tests' own bpffs: mounted on a temporary directory so pins never touch /sys/fs/bpf, and removed
 * with everything pinned in it. Root only.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { removePins } from "./pin.js";

export interface ScratchBpffs {
  /** `<mount>/weft`: a pin directory for TcDatapath.open and SockDatapath.open. */
  pinDir: string;
  /** Unpins what is under pinDir, unmounts and removes the directory. */
  remove(): void;
}

export function mountScratchBpffs(prefix: string): ScratchBpffs {
  const mnt = mkdtempSync(join(tmpdir(), prefix));
  execFileSync("mount", ["-t", "bpf", "bpf", mnt]);
  const pinDir = join(mnt, "weft");
  return {
    pinDir,
    remove() {
      removePins(pinDir);
      execFileSync("umount", [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    },
  };
}
