// reportError: user errors are one `kiln:` line (a stack only with KILN_DEBUG=1), fixable file-system errors name
// the path and the reason, anything else is an internal error with its stack, and long messages are capped.

import { describe, expect, it } from "vitest";
import { OutputError } from "../io/kiln-error.ts";
import { capMessage, isUserError, reportError, UsageError } from "./errors.ts";

const report = (e: unknown, env: NodeJS.ProcessEnv = {}) => {
  let text = "";
  const code = reportError(e, (s) => (text += s), env);
  return { code, text };
};

describe("reportError", () => {
  it("prints a KilnError as one line, with its stack only under KILN_DEBUG=1", () => {
    expect(report(new OutputError("--out .: refusing to write over the current directory"))).toEqual({
      code: 1,
      text: "kiln: --out .: refusing to write over the current directory\n",
    });
    const debug = report(new UsageError("bad flag"), { KILN_DEBUG: "1" }).text;
    expect(debug.startsWith("kiln: bad flag\nUsageError: bad flag\n    at ")).toBe(true);
  });

  it("reports ENOSPC and friends as user errors naming the path, not as internal errors", () => {
    const e = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", syscall: "write", path: "/mnt/out/g.html" });
    expect(isUserError(e)).toBe(true);
    expect(report(e).text).toBe("kiln: cannot write: /mnt/out/g.html: no space left on the device\n");
  });

  it("keeps internal error and the stack for real bugs", () => {
    const text = report(new TypeError("x is undefined")).text;
    expect(text).toMatch(/^kiln: internal error: TypeError: x is undefined\n\s+at /);
  });

  it("caps long messages", () => {
    const long = Array.from({ length: 100_000 }, (_, i) => `checkpoint tensor 't${i}' is not used by the model`).join("\n");
    const capped = capMessage(long);
    expect(capped.length).toBeLessThan(4200);
    expect(capped).toMatch(/… and [\d,]+ more characters \([\d,]+ lines\) not shown$/);
  });
});
