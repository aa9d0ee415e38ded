// The output directory of the benchmark's timed runs, and the one memory-state rule every run follows: the
// previous run's output is deleted (and synced) right before the run starts writing, not earlier.
// Why: the benchmark VM returns freed guest memory to its host within about two seconds (free page reporting),
// and writing into returned memory costs a host page fault per page. `cp -r` started 0.7 s after deleting the
// previous output took 1.5-2.2 s instead of 0.7 s, and 2.1-2.7 s when started 2.5 s after (measured). Deleting
// before `kiln compile` starts would make Kiln, which writes its first block about a second later (Node start,
// trace, passes), pay that cost and cp not; so Kiln deletes at its first block (convert-child.ts), cp right
// before it starts, and neither timing includes the deletion.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";

/**
 * Moves the previous run's output in `root` aside (a rename frees no memory), syncs so no run pays for another's
 * writeback, and makes an empty output directory. Returns [output dir, stale dir to pass to dropStale].
 */
export function setAsideOutput(root: string): [string, string] {
  const [out, stale] = [join(root, "out"), join(root, "out.stale")];
  rmSync(stale, { recursive: true, force: true });
  if (existsSync(out)) renameSync(out, stale);
  execFileSync("sync");
  mkdirSync(out, { recursive: true });
  return [out, stale];
}

/** Deletes the previous run's output and syncs; returns the seconds it took. */
export function dropStale(stale: string): number {
  const t0 = performance.now();
  rmSync(stale, { recursive: true, force: true });
  execFileSync("sync");
  return (performance.now() - t0) / 1000;
}
