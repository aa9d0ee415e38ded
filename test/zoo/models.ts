// The zoo model files by name, for tests.

import type { ModelDefinition } from "../../src/dsl/define-model.ts";
import llama from "../../models/llama.ts";
import mistral from "../../models/mistral.ts";
import qwen2 from "../../models/qwen2.ts";
import qwen3 from "../../models/qwen3.ts";
import gemma from "../../models/gemma.ts";
import gemma2 from "../../models/gemma2.ts";
import falcon from "../../models/falcon.ts";
import gpt_neox from "../../models/gpt_neox.ts";
import starcoder2 from "../../models/starcoder2.ts";
import phi3 from "../../models/phi3.ts";
import mixtral from "../../models/mixtral.ts";
import qwen2_moe from "../../models/qwen2_moe.ts";
import qwen3_moe from "../../models/qwen3_moe.ts";

const ZOO_MODELS: Record<string, ModelDefinition<any>> = {
  llama,
  mistral,
  qwen2,
  qwen3,
  gemma,
  gemma2,
  gpt_neox,
  starcoder2,
  phi3,
  falcon,
  mixtral,
  qwen2_moe,
  qwen3_moe,
};

export function zooModel(name: string): ModelDefinition<any> {
  const m = ZOO_MODELS[name];
  if (!m) throw new Error(`no zoo model '${name}'`);
  return m;
}
