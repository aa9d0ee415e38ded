// Why tiny-shape GEMM tests cannot hold float32 kernels to a plain relative bound (src/interp/fast/kernels.test.ts,
// docs/performance.md): 20000 random shapes of the test's range through the native linear against float64, counting
// plain rel L2 > 1e-6, and the worst error against the terms' magnitude. bench/cancellation.py does the same for PyTorch.
// Usage: node bench/cancellation.mjs
import { createRequire } from "node:module";
const n = createRequire(import.meta.url)(new URL("../native/build/Release/kiln_gemm.node", import.meta.url).pathname);
let seed = 7;
const rnd = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
const ri = (a, b) => a + Math.floor(rnd() * (b - a + 1));
let checked = 0,
  bad = 0;
let fails = 0,
  worst = 0,
  worstT = 0;
const N = 20000;
const ks = [];
for (let t = 0; t < N; t++) {
  const rows = ri(1, 9),
    inF = ri(1, 300),
    outF = ri(1, 70),
    hasB = rnd() < 0.5;
  const x = Float32Array.from({ length: rows * inF }, () => rnd() * 2 - 1),
    w = Float32Array.from({ length: outF * inF }, () => rnd() * 2 - 1);
  const b = hasB ? Float32Array.from({ length: outF }, () => rnd() * 2 - 1) : null;
  const out = new Float32Array(rows * outF);
  n.linear(x, w, b, out, rows, inF, outF);
  let num = 0,
    den = 0,
    dena = 0;
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inF; i++) s += x[r * inF + i] * w[o * inF + i];
      num += (out[r * outF + o] - s) ** 2;
      den += s * s;
      let a = b ? Math.abs(b[o]) : 0;
      for (let i = 0; i < inF; i++) a += Math.abs(x[r * inF + i] * w[o * inF + i]);
      dena += a * a;
    }
  const rel = Math.sqrt(num) / Math.sqrt(den);
  const relT = Math.sqrt(num) / Math.sqrt(dena);
  worstT = Math.max(worstT, relT);
  const ratio = Math.sqrt(dena) / Math.sqrt(den);
  if (ratio <= 25) {
    checked++;
    if (rel > 1e-6) bad++;
  }
  if (rel > 1e-6) {
    fails++;
    ks.push([rows, inF, outF]);
  }
  worst = Math.max(worst, rel);
}
console.log(`outputs that do not cancel (terms within 25x of the result; the test checks these plainly): ${checked}, of which over 1e-6: ${bad}`);
console.log(
  `kiln native linear vs float64: ${fails}/${N} exceed 1e-6 (${((100 * fails) / N).toFixed(2)}%), worst ${worst.toExponential(2)}; against the terms: worst ${worstT.toExponential(2)}`,
  JSON.stringify(ks.slice(0, 5)),
);
