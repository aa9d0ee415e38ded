// `kiln graph <model.ts> --hf DIR|--config FILE [--stage traced|fused|trtllm] --format onnx|dot|html|text --out FILE`:
// write a view of the model graph at one compiler stage. onnx opens in Netron (custom ops in the kiln domains;
// --with-weights embeds the checkpoint's values); dot is Graphviz with one cluster per module; html is a
// self-contained interactive page; text is the IR printout. Repeated decoder layers are folded unless --expand
// (the HTML page holds both views). dot and text go to stdout without --out.

import { existsSync } from "node:fs";
import { checkOutputFile, writeOutputFile } from "../../io/output-guard.ts";
import { chooseModel } from "../../driver/zoo.ts";
import { toDot } from "../../views/dot.ts";
import { toHtml } from "../../views/html.ts";
import { loadModelStages, loadStageWeights, type Stage, STAGES } from "../../views/model-stages.ts";
import { toOnnxBytes } from "../../views/onnx.ts";
import { toText } from "../../views/text.ts";
import { buildView } from "../../views/view-graph.ts";
import { UsageError } from "../errors.ts";
import { modelSource } from "./model-source.ts";

export interface GraphFlags {
  readonly hf?: string;
  readonly config?: string;
  readonly stage: string;
  readonly format: string;
  readonly out?: string;
  readonly withWeights?: boolean;
  readonly expand?: boolean;
  readonly typecheck: boolean;
}

const FORMATS = ["onnx", "dot", "html", "text"] as const;
type Format = (typeof FORMATS)[number];
const NEEDS_FILE: ReadonlySet<Format> = new Set(["onnx", "html"]);

function choice<T extends string>(flag: string, value: string, options: readonly T[]): T {
  if ((options as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`${flag}: expected one of ${options.join(", ")}, got '${value}'`);
}

export async function graphCommand(spec: string | undefined, flags: GraphFlags, out: (s: string) => void): Promise<void> {
  const stage: Stage = choice("--stage", flags.stage, STAGES);
  const format: Format = choice("--format", flags.format, FORMATS);
  const source = modelSource(flags);
  if (NEEDS_FILE.has(format) && !flags.out) throw new UsageError(`--format ${format} writes a file: give --out FILE`);
  if (flags.withWeights && format !== "onnx") throw new UsageError("--with-weights applies to --format onnx only");
  if (flags.withWeights && !("hfDir" in source)) throw new UsageError("--with-weights needs the checkpoint: give --hf DIR instead of --config");
  const outFile =
    flags.out === undefined
      ? undefined
      : checkOutputFile(flags.out, { flag: "--out", inputs: [...(spec !== undefined && existsSync(spec) ? [spec] : []), flags.hf, flags.config] });
  const { def, file } = await chooseModel(spec, flags, { typecheck: flags.typecheck });
  const stages = await loadModelStages(def, source);
  const g = stages.graph(stage);
  const collapse = !flags.expand;
  const title = `${def.name} (${stage})`;
  const render: Record<Format, () => Promise<string | Uint8Array>> = {
    onnx: async () =>
      toOnnxBytes(g, {
        docString: `${title} from ${file}`,
        ...(flags.withWeights && "hfDir" in source && { weights: await loadStageWeights(stages, stage, source.hfDir) }),
      }),
    dot: async () => toDot(buildView(g, { collapse }), title),
    html: async () => toHtml(g, { title: def.name, subtitle: `${stage} graph · ${file}` }),
    text: async () => toText(g, { collapse }),
  };
  const content = await render[format]();
  if (!outFile) return out(content as string);
  await writeOutputFile(outFile, content);
  out(`kiln: wrote ${flags.out} (${format}, ${stage} graph of '${def.name}': ${g.nodes.length} nodes, ${content.length} bytes)\n`);
}
