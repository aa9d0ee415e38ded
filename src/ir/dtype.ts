// Element types the IR knows. Float math in the interpreter is always float32; these tags say what a value is
// stored as on the target (and what casts mean), so they must survive every pass and serialization unchanged.

export const DTYPES = ["f32", "f16", "bf16", "i32", "bool"] as const;
export type DType = (typeof DTYPES)[number];

export const isFloat = (d: DType): boolean => d === "f32" || d === "f16" || d === "bf16";

export function isDType(s: string): s is DType {
  return (DTYPES as readonly string[]).includes(s);
}
