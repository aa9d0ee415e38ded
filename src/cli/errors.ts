// CLI error reporting: user errors (bad files, bad flags, models that do not fit their weights, refused outputs, a
// full disk) print as one `kiln: <message>` line with exit code 1 and no stack trace; anything else is a Kiln bug and
// is reported as `kiln: internal error:` with its stack. KILN_DEBUG=1 adds the stack to user errors too.
// A user error is a KilnError (src/io/kiln-error.ts; new code throws its subclasses), one of the older named error
// classes below, or a Node file-system error a user can fix (ENOSPC, EACCES, ENOTDIR, ...). Messages are capped in
// length so a checkpoint with a million bad tensors cannot print megabytes.

import { describeFsError, KilnError, USER_FS_CODES } from "../io/kiln-error.ts";

export { KilnError } from "../io/kiln-error.ts";

export class UsageError extends KilnError {}

const USER_ERRORS = new Set([
  "UsageError",
  "ModelFileError",
  "ConfigError",
  "SafetensorsError",
  "SourceReadError",
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
  "MappingError",
  "LoraError",
]);

const fsCode = (e: unknown) => (e as NodeJS.ErrnoException).code;

export function isUserError(e: unknown): e is Error {
  if (!(e instanceof Error)) return false;
  if (e instanceof KilnError || USER_ERRORS.has(e.constructor.name) || USER_ERRORS.has(e.name)) return true;
  const code = fsCode(e);
  return typeof code === "string" && USER_FS_CODES.has(code);
}

/** At most `max` characters: a long message keeps its head and says how much was cut. */
export function capMessage(text: string, max = 4000): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  const lines = text.slice(max).split("\n").length;
  return `${cut}\n… and ${(text.length - max).toLocaleString("en-US")} more characters (${lines.toLocaleString("en-US")} lines) not shown`;
}

function userMessage(e: Error): string {
  const code = fsCode(e);
  if (!(e instanceof KilnError) && typeof code === "string" && USER_FS_CODES.has(code))
    return describeFsError(
      e as NodeJS.ErrnoException,
      (e as NodeJS.ErrnoException).syscall ? `cannot ${(e as NodeJS.ErrnoException).syscall}` : "file system error",
    );
  return e.message;
}

export function reportError(e: unknown, write: (s: string) => void = (s) => process.stderr.write(s), env: NodeJS.ProcessEnv = process.env): number {
  const debug = env.KILN_DEBUG === "1";
  if (isUserError(e)) write(`kiln: ${capMessage(userMessage(e))}\n${debug && e.stack ? `${e.stack}\n` : ""}`);
  else write(`kiln: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return 1;
}
