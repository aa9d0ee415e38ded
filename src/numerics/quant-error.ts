// The one error type of src/quant: bad input to a quantizer (non-finite weights, shape mismatches, out-of-range
// codes, unknown scheme names). Messages are one line and name the tensor and position at fault.

export class QuantError extends Error {
  override name = "QuantError";
}
