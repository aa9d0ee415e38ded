// `kiln models`: the zoo — each definition in models/, the Hugging Face architectures it reads (from the definition
// itself) and the TensorRT-LLM 1.2.1 class its engine checkpoint uses. `kiln run|compile|... --hf DIR` without a
// model picks from this list by config.json's `architectures`.

import { loadZoo, ZOO_TRTLLM_CLASS } from "../../driver/zoo.ts";

export async function modelsCommand(flags: { json?: boolean }, out: (s: string) => void): Promise<void> {
  const rows = (await loadZoo()).map((z) => ({
    name: z.name,
    file: `models/${z.name}.ts`,
    architectures: [...z.def.architectures],
    trtllm: ZOO_TRTLLM_CLASS[z.name],
  }));
  if (flags.json) return out(`${JSON.stringify({ models: rows })}\n`);
  const cells = rows.map((r) => [r.name, r.architectures.join(", "), `${r.trtllm.class} (${r.trtllm.architecture})`, r.file]);
  const head = ["name", "HF architectures", "TensorRT-LLM 1.2.1 class", "file"];
  const width = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c
      .map((x, i) => x.padEnd(width[i]!))
      .join("  ")
      .trimEnd();
  out(`${[line(head), ...cells.map(line)].join("\n")}\n`);
  out("Pick one with 'kiln run NAME --hf DIR', or leave the model out to pick by DIR/config.json's architectures.\n");
}
