// Rounding modes used by the quantizers. They differ on exact ties only, and which one applies is a fact about
// the TensorRT-LLM code path being mirrored, so each caller names its mode explicitly:
//   - half away from zero: C's round(), used by TensorRT-LLM's CPU weight-only quantizer
//     (cutlass_preprocessors.cpp, symmetric_quantize). torch.round would instead give half-to-even.
//   - half to even: IEEE default; FP8 casts and the GPU's `cvt.rni` (INT8 KV-cache quantization) use it.
// Both are exact for every double (no intermediate rounding).

/** Round to the nearest integer, ties away from zero (C `round`). Keeps the sign of zero. */
export function roundHalfAwayFromZero(x: number): number {
  const r = Math.round(Math.abs(x)); // Math.round breaks ties upward, i.e. away from zero for |x|
  return x < 0 || Object.is(x, -0) ? -r : r;
}

/**
 * Round to the nearest integer, ties to even (IEEE roundTiesToEven, `cvt.rni`, torch.round). A zero result may
 * be +0 where IEEE would give -0: callers use it to produce integer codes, which have no signed zero.
 */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f; // exact: x and f share an exponent range where the subtraction is exact
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}
