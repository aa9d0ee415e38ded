// Child process of the benchmark: runs the real `kiln compile` pipeline (models/llama.ts, trace, passes, lowering,
// sharding, streaming conversion, atomic rename) once and prints one JSON line with the time and the process's peak
// RSS, so the parent measures memory of the compile alone.
// Usage: tsx bench/convert-child.ts <checkpoint dir> <out dir> <tp> <float32|float16|bfloat16>

import llama from "../models/llama.ts";
import type { TrtDtype } from "../codegen/trtllm-engine/pretrained-config.ts";
import { compileModel } from "../src/pipeline/compile.ts";

const [dir, out, tpArg, dtype] = process.argv.slice(2);
if (!dir || !out || !tpArg || !dtype) throw new Error("usage: convert-child.ts <checkpoint> <out> <tp> <dtype>");
const t0 = performance.now();
const r = await compileModel(llama, { hfDir: dir, outDir: out, mapping: { tp: Number(tpArg), pp: 1 }, dtype: dtype as TrtDtype });
const seconds = (performance.now() - t0) / 1000;
// maxRSS is in kilobytes.
console.log(JSON.stringify({ bytes: r.bytesWritten, tensors: r.emission.plans.reduce((a, p) => a + p.tensors.length, 0), seconds, maxRssMB: process.resourceUsage().maxRSS / 1024 }));
