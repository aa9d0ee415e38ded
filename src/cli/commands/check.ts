// `kiln check <model.ts>`: type-check a model file (and that its default export is a model definition); runs
// nothing else.

import { loadModelFile } from "../../driver/load-model-file.ts";

export async function checkCommand(file: string, out: (s: string) => void): Promise<void> {
  const def = await loadModelFile(file);
  out(`${file}: ok (model '${def.name}')\n`);
}
