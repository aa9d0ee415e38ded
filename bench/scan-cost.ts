// `npx tsx bench/scan-cost.ts [MiB]`: what the numerics scan costs the native helper (native/copy_ranges.c), as an
// interleaved A/B on one file, so machine noise hits both sides alike: the same ranges copied with and without
// `scan` (counting Inf/NaN in C), on each path (mapped preallocated destination, bounce buffer, copy_file_range), and
// for a BF16 -> F16 table cast. The source is read from the page cache in every run (a warm-up read first).
// Prints the median seconds of each side and their ratio.

import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { castTable } from "../src/weights/float-cast.ts";
import { rangeCopier } from "../src/weights/copy-ranges.ts";

const MIB = Number(process.argv[2] ?? 256);
const ROUNDS = Number(process.env.KILN_BENCH_ROUNDS ?? 7);
const BLOCK = 16 << 20; // the converter's block for the helper (convert.ts COPY_BLOCK_BYTES)

const copier = rangeCopier();
if (!copier) throw new Error("the native helper is not built (node scripts/build-native.mjs)");
const dir = mkdtempSync(join(tmpdir(), "kiln-scan-cost-"));
const src = join(dir, "src.bin");
const bytes = MIB << 20;
const data = new Uint16Array(bytes / 2).map((_, i) => 0x3c00 | (i & 0x3ff)); // finite BF16 and F16 values
writeFileSync(src, data);

async function once(path: "map" | "buffer" | "kernel", scan: boolean, cast: boolean): Promise<number> {
  const dst = join(dir, "dst.bin");
  writeFileSync(dst, "");
  const [s, d] = [openSync(src, "r"), openSync(dst, "r+")];
  try {
    const map = path === "map" && copier!.preallocate(d, bytes);
    const t0 = performance.now();
    for (let at = 0; at < bytes; at += BLOCK) {
      const n = Math.min(BLOCK, bytes - at);
      await copier!.copy(d, 0, Float64Array.from([s, at, at, n]), {
        kernel: path === "kernel",
        map,
        ...(scan && { scan: cast ? "F16" : "BF16" }),
        ...(cast && { table: castTable("BF16", "F16")! }),
      });
    }
    return (performance.now() - t0) / 1000;
  } finally {
    closeSync(s);
    closeSync(d);
    rmSync(dst);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
await once("buffer", false, false); // warm the page cache
console.log(`native helper, ${MIB} MiB in ${BLOCK >> 20} MiB blocks, ${ROUNDS} interleaved rounds (median s)`);
for (const [path, cast] of [
  ["map", false],
  ["map", true],
  ["buffer", false],
  ["kernel", false],
] as const) {
  const off: number[] = [];
  const on: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which side goes first, so neither always follows the other.
    if (r % 2) on.push(await once(path, true, cast)), off.push(await once(path, false, cast));
    else off.push(await once(path, false, cast)), on.push(await once(path, true, cast));
  }
  console.log(
    `  ${`${path}${cast ? " + BF16->F16 cast" : ""}`.padEnd(24)} no scan ${median(off).toFixed(3)}  scan ${median(on).toFixed(3)}  ratio ${(median(on) / median(off)).toFixed(3)}`,
  );
}
rmSync(dir, { recursive: true, force: true });
