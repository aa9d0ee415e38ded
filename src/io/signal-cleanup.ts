// Temporary files and folders that must not outlive the process. While any are registered, SIGINT, SIGTERM and
// SIGHUP remove them and exit with 128 + the signal number (the shell's convention), and a plain process.exit()
// removes them too. SIGKILL cannot be caught: output-guard.ts removes what a killed run left, on the next run.
// Invariants: handlers are installed only while something is registered, so other code keeps the default
// behaviour; removal is synchronous and never throws.

import { rmSync } from "node:fs";

const live = new Set<string>();
const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;
type SignalName = keyof typeof SIGNALS;

function removeAll(): void {
  for (const p of live) {
    try {
      rmSync(p, { recursive: true, force: true });
    } catch {
      // best effort: the next run's stale-temp sweep removes what is left
    }
  }
  live.clear();
}

const exitOn = (s: SignalName) => () => {
  removeAll();
  process.exit(128 + SIGNALS[s]);
};
const handlers: Record<SignalName, () => void> = { SIGINT: exitOn("SIGINT"), SIGTERM: exitOn("SIGTERM"), SIGHUP: exitOn("SIGHUP") };

function install(): void {
  for (const s of Object.keys(SIGNALS) as SignalName[]) process.on(s, handlers[s]);
  process.on("exit", removeAll);
}

function uninstall(): void {
  for (const s of Object.keys(SIGNALS) as SignalName[]) process.off(s, handlers[s]);
  process.off("exit", removeAll);
}

/** Removes `path` (file or folder) if the process is interrupted before the returned function is called. */
export function removeOnSignal(path: string): () => void {
  if (live.size === 0) install();
  live.add(path);
  return () => {
    if (!live.delete(path)) return;
    if (live.size === 0) uninstall();
  };
}

/** The paths registered now (for tests). */
export function registeredTemps(): readonly string[] {
  return [...live];
}
