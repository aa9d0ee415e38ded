// Hints: what a model author asks of the compiler, as typed data attached to a module (or the whole model). The
// model says *what* it computes; passes and emitters read hints to decide *how*. A misspelt hint is a TypeScript
// error (the Hints type) and a zod error at run time (strict schemas), naming the module.

import { z } from "zod";

const PluginDtype = z.enum(["auto", "float16", "bfloat16", "float32"]);

export const HintsSchema = z.strictObject({
  /** Turn individual fusions on or off for this module and everything below it. */
  fuse: z
    .strictObject({
      qkv: z.boolean(),
      gatedMlp: z.boolean(),
      norms: z.boolean(),
      attention: z.boolean(),
      biasAdd: z.boolean(),
    })
    .partial()
    .optional(),
  /** TensorRT-LLM plugins and their precision (model level). `false` disables a plugin. */
  plugins: z
    .strictObject({
      gptAttention: z.union([PluginDtype, z.literal(false)]),
      gemm: z.union([PluginDtype, z.literal(false)]),
      contextFmha: z.boolean(),
      pagedKvCache: z.boolean(),
      removeInputPadding: z.boolean(),
      fusedMlp: z.boolean(),
    })
    .partial()
    .optional(),
  /** `false` keeps this module's weights unquantized whatever --quant says. */
  quantize: z.boolean().optional(),
});

export type Hints = z.infer<typeof HintsSchema>;

export function parseHints(scope: string, hints: unknown): Hints {
  const r = HintsSchema.safeParse(hints);
  if (!r.success) throw new Error(`invalid hints on ${scope || "the model"}: ${z.prettifyError(r.error).replace(/\n/g, "; ")}`);
  return r.data;
}
