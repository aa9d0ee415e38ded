// Child process of the benchmark: runs the real `kiln compile` pipeline (models/llama.ts, trace, passes, lowering,
// sharding, streaming conversion, atomic rename) once and prints one JSON line with the time, the part of it spent
// before the first weight block (trace, passes, lowering, planning: the "prelude"), and the process's peak RSS,
// so the parent measures memory of the compile alone. At the first block it deletes the previous run's output
// (see stale-output.ts); that deletion is not counted.
// Usage: tsx bench/convert-child.ts <checkpoint dir> <out dir> <tp> <float32|float16|bfloat16> [<stale dir>]

import llama from "../models/llama.ts";
import { compileModel } from "../src/driver/compile.ts";
import { dropStale } from "./stale-output.ts";

type Dtype = NonNullable<Parameters<typeof compileModel>[1]["dtype"]>;

const [dir, out, tpArg, dtype, stale] = process.argv.slice(2);
if (!dir || !out || !tpArg || !dtype) throw new Error("usage: convert-child.ts <checkpoint> <out> <tp> <dtype> [<stale dir>]");
let firstBlock: number | undefined;
let dropSeconds = 0;
// Called once per block (a few thousand times): cheap enough not to show in the timing.
const onProgress = () => {
  if (firstBlock !== undefined) return;
  firstBlock = performance.now();
  if (stale) dropSeconds = dropStale(stale);
};
const t0 = performance.now();
const r = await compileModel(llama, { hfDir: dir, outDir: out, mapping: { tp: Number(tpArg), pp: 1 }, dtype: dtype as Dtype, onProgress });
const seconds = (performance.now() - t0) / 1000 - dropSeconds;
const preludeSeconds = ((firstBlock ?? t0) - t0) / 1000;
// maxRSS is in kilobytes.
console.log(
  JSON.stringify({
    bytes: r.bytesWritten,
    nativeBytes: r.nativeCopiedBytes + r.nativeCastBytes,
    seconds,
    preludeSeconds,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
  }),
);
