// One list of reserved attribute names (identifiers.ts reservedAttribute) applied by every target: a module or
// parameter field named like a Python keyword, a dunder, or an attribute of torch.nn.Module / TensorRT-LLM's Module
// is refused with one clear error naming the tensor and the attribute (red-team D13); ordinary names still compile.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import type { ModelDefinition } from "../../src/dsl/define-model.ts";
import { prepareCompile } from "../../src/driver/compile.ts";
import { reservedAttribute } from "./identifiers.ts";
import { TARGET_NAMES } from "../../src/driver/targets.ts";

const dir = mkdtempSync(join(tmpdir(), "kiln-reserved-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hf = JSON.parse(readFileSync("test/fixtures/hf/llama/config.json", "utf8")) as Record<string, unknown>;
const GLUE = readFileSync("codegen/hf/tests/glue_model.ts", "utf8")
  .replace(/from "kiln"/g, `from ${JSON.stringify(resolve("src/index.ts"))}`)
  .replace(/from "\.\.\/\.\.\/\.\.\/models\/llama\.ts"/, `from ${JSON.stringify(resolve("models/llama.ts"))}`);

let n = 0;
/** The glue model with its module field `extra` (kind "module") or parameter field `gate` renamed to `name`. */
async function variant(kind: "module" | "param", name: string): Promise<ModelDefinition<unknown>> {
  const field = kind === "module" ? "extra" : "gate";
  const text = GLUE.replaceAll(`this.${field}`, `this[${JSON.stringify(name)}]`)
    .replace(`readonly ${field}:`, `readonly [${JSON.stringify(name)}]:`)
    .replaceAll(`.${field}\``, `.${name}\``)
    .replaceAll(`.${field}.w\``, `.${name}.w\``);
  const file = join(dir, `glue-${n++}.ts`);
  writeFileSync(file, text);
  return ((await import(pathToFileURL(file).href)) as { default: ModelDefinition<unknown> }).default;
}

const compile = (def: ModelDefinition<unknown>, target: (typeof TARGET_NAMES)[number]) =>
  prepareCompile(def, hf, "infer", { target, ...(target === "trtllm-engine" && { customCode: true }) });

describe("reservedAttribute", () => {
  it("names keywords, dunders and each family's attributes", () => {
    expect(reservedAttribute("lambda", "torch")).toBeUndefined(); // keywords go through setattr/getattr
    expect(reservedAttribute("__weird__", "torch")).toMatch(/dunder/);
    expect(reservedAttribute("__class__", "trtllm")).toMatch(/dunder/);
    expect(reservedAttribute("_parameters", "torch")).toMatch(/torch\.nn\.Module/);
    expect(reservedAttribute("_parameters", "trtllm")).toMatch(/TensorRT-LLM's Module/);
    expect(reservedAttribute("training", "torch")).toMatch(/torch/);
    expect(reservedAttribute("training", "trtllm")).toBeUndefined(); // TensorRT-LLM's Module has no such attribute
    expect(reservedAttribute("q_proj", "torch")).toBeUndefined();
  });
});

describe("every target refuses reserved field names", () => {
  const hostile = ["__class__", "__init__", "__dict__", "_parameters", "_modules", "_network_outputs", "named_parameters"];
  const escapeRegex = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  for (const target of TARGET_NAMES)
    for (const kind of ["module", "param"] as const)
      it(`${target}: ${kind} fields`, async () => {
        for (const fine of ["ok_name", "lambda"]) {
          const ok = await variant(kind, fine);
          expect(() => compile(ok, target), fine).not.toThrow();
        }
        for (const name of [...hostile, ...(target === "trtllm-engine" ? [] : ["training"])]) {
          const def = await variant(kind, name);
          expect(() => compile(def, target), `${target} ${kind} ${name}`).toThrow(new RegExp(`attribute '${escapeRegex(name)}'.*rename that module field`));
        }
      }, 60_000);
});
