// How much CPU time everything else on the machine used while the benchmark timed a run: other processes on a
// 2-core VM slow Kiln (which keeps both cores busy) more than cp (one core), so such runs are rerun. Linux only
// (/proc); elsewhere it reports 0.
// Invariant: counts all CPUs' busy time minus this process's and its waited-for children's (the timed run).

import { existsSync, readFileSync } from "node:fs";

const TICK = 100; // USER_HZ: /proc reports clock ticks of 1/100 s on Linux

/** Busy ticks of all CPUs (user, nice, system, irq, softirq, steal). */
function machineBusy(): number {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  return f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
}

/** This process's user + system ticks and its waited-for children's. */
function ownBusy(): number {
  const f = readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ").map(Number);
  return f[11]! + f[12]! + f[13]! + f[14]!; // utime, stime, cutime, cstime
}

/** Runs `fn` (a blocking spawn of the timed run) and returns its result with the CPU seconds others used meanwhile. */
export function withOtherCpu<T>(fn: () => T): [T, number] {
  if (!existsSync("/proc/stat")) return [fn(), 0];
  const [m0, o0] = [machineBusy(), ownBusy()];
  const result = fn();
  return [result, Math.max(0, machineBusy() - m0 - (ownBusy() - o0)) / TICK];
}
