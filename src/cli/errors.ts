// CLI error reporting: user errors (bad files, bad flags, models that do not fit their weights) print as
// `kiln: <message>` with exit code 1 and no stack trace; anything else is a Kiln bug and keeps its stack.

export class UsageError extends Error {}

const USER_ERRORS = new Set([
  "UsageError",
  "ModelFileError",
  "ConfigError",
  "SafetensorsError",
  "CheckpointError",
  "BindError",
  "WeightMapError",
  "OpTypeError",
  "VerifyError",
  "InterpError",
  "ZodError",
  "QuantError",
  "PassError",
  "HintError",
  "LowerError",
  "EmitError",
  "ShardError",
  "SimulationError",
  "ConvertError",
  "CheckpointLayoutError",
  "ShapeInferenceError",
  "ApiCheckError",
  "TritonOptionError",
  "TritonConfigError",
  "TritonRepoError",
  "OpDeclError",
  "TargetError",
  "CustomOpEmitError",
  "ModelPyError",
  "LoraError",
]);

export function isUserError(e: unknown): e is Error {
  return e instanceof Error && (USER_ERRORS.has(e.constructor.name) || USER_ERRORS.has(e.name) || (e as NodeJS.ErrnoException).code === "ENOENT");
}

export function reportError(e: unknown, write: (s: string) => void = (s) => process.stderr.write(s)): number {
  if (isUserError(e)) write(`kiln: ${e.message}\n`);
  else write(`kiln: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return 1;
}
