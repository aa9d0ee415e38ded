// Generates docs/dsl-reference.md from the code: every Tensor method, every F.* function, every library module with
// its constructor and options, every weight-map expression and the Hugging Face config helpers, each with its
// signature (read from the sources with ts-morph), its description (the JSDoc, else the doc of the IR op it emits,
// from the op table) and a one-line example from EXAMPLES below. test/docs/dsl-reference.test.ts fails when the
// committed file is stale or when something public has no example, so the reference cannot drift from the code.
// Usage: npx tsx scripts/dsl-reference.ts [--check]

import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type JSDocableNode, Node, Project, type SourceFile } from "ts-morph";
import { CORE_OPS } from "../src/ir/ops.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
export const REFERENCE_PATH = `${ROOT}docs/dsl-reference.md`;

/** One-line examples, keyed by section item. Every public item must have one (the test checks). */
export const EXAMPLES: Record<string, string> = {
  "Tensor.shape": "const [b, s] = x.shape;",
  "Tensor.dtype": 'if (x.dtype === "f16") ...',
  "Tensor.rank": "const r = x.rank; // 3 for [batch, seq, hidden]",
  "Tensor.id": "g.values.get(x.id) // the IR value (tools, not models)",
  "Tensor.dim": "x.reshape([x.dim(0), x.dim(1), heads, headDim])",
  "Tensor.add": "const h = x.add(attnOut);",
  "Tensor.sub": "const centered = x.sub(x.mean(-1));",
  "Tensor.mul": "const scaled = emb.mul(Math.sqrt(hidden));",
  "Tensor.div": "const capped = logits.div(30).tanh().mul(30); // soft-capping",
  "Tensor.pow": "const sq = x.pow(2);",
  "Tensor.neg": "const y = x.neg();",
  "Tensor.exp": "const e = x.exp();",
  "Tensor.tanh": "const t = x.tanh();",
  "Tensor.softcap": "const logits = lmHead.forward(h).softcap(30); // Gemma 2 final_logit_softcapping",
  "F.softcap": "F.softcap(logits, 30) // 30 * tanh(logits / 30)",
  "Tensor.erf": "const e = x.div(Math.SQRT2).erf();",
  "Tensor.sqrt": "const r = x.sqrt();",
  "Tensor.rsqrt": "const inv = x.pow(2).mean(-1).add(1e-6).rsqrt();",
  "Tensor.relu": "const y = x.relu();",
  "Tensor.sigmoid": "const g = x.sigmoid();",
  "Tensor.silu": "const y = gate.silu().mul(up);",
  "Tensor.gelu": 'const y = x.gelu("tanh"); // HF gelu_pytorch_tanh',
  "Tensor.cast": 'const s = x.cast("float32").mul(x.cast("float32")).sum(-1).cast("model"); // float32 island in half builds',
  "Tensor.matmul": "const scores = q.matmul(k.swap(-1, -2));",
  "Tensor.softmax": "const p = scores.softmax(-1);",
  "Tensor.mean": "const m = x.mean(-1); // keepDims by default",
  "Tensor.sum": "const s = x.sum([1, 2], false);",
  "Tensor.max": "const m = x.max(-1);",
  "Tensor.reshape": 'x.reshape([b, s, heads, 64]) // dims may be symbols such as "seq"',
  "Tensor.transpose": "x.transpose([0, 2, 1, 3])",
  "Tensor.swap": "k.swap(-1, -2)",
  "Tensor.split": "const [q, k, v] = qkv.split([512, 128, 128], -1);",
  "Tensor.slice": "const rot = x.slice(-1, 0, 32);",
  "Tensor.repeatInterleave": "const kk = k.repeatInterleave(heads / kvHeads, 2);",
  "Tensor.causalMask": "const masked = scores.causalMask();",
  "Tensor.topk": "const [weights, experts] = probs.topk(2); // [..., 2] f32 and i32",
  "Tensor.argmax": "const next = logits.argmax(-1); // i32",
  "Tensor.gt": "const positive = x.gt(0); // bool",
  "Tensor.lt": "const below = scores.lt(threshold);",
  "Tensor.eq": "const chosen = experts.eq(e); // bool [..., k]",
  "Tensor.gather": "const w = probs.gather(-1, experts); // torch.gather",
  "Tensor.indexSelect": "const rows = table.indexSelect(0, ids1d);",
  "Tensor.oneHot": "const mask = experts.oneHot(numExperts); // [..., k, E] f32",
  "F.where": "F.where(x.gt(0), x, 0)",
  "F.moe": 'F.moe(x, { router, gate, up, down }, { numExperts: 8, topK: 2, scoring: "softmax", normalizeTopK: true, activation: "silu" })',
  "F.linear": "F.linear(x, this.w.value, this.b.value)",
  "F.embedding": "F.embedding(this.table.value, ids)",
  "F.layerNorm": "F.layerNorm(x, w, b, 1e-5)",
  "F.rmsNorm": "F.rmsNorm(x, w, 1e-6)",
  "F.concat": "F.concat([a, b], -1)",
  "F.rope": 'F.rope(q, positions, { style: "neox", rotaryDim: 64, theta: 1e4, scaling: null })',
  "F.gatedActivation": 'F.gatedActivation(fused, "silu")',
  "F.attention": "F.attention(q, k, v, { causal: true, scale: 1 / 8, window: 4096, softcap: 50 })",
  "F.ACTIVATIONS": 'F.ACTIVATIONS["gelu_pytorch_tanh"](x)',
  "F.ACTIVATION_NAMES": "hidden_act: z.enum(ACTIVATION_NAMES)",
  Linear: "new Linear(4096, 11008, { bias: false })",
  Embedding: "new Embedding(vocab, hidden, { scale: Math.sqrt(hidden) }) // Gemma; omit scale for most models",
  LayerNorm: "new LayerNorm(hidden, 1e-5)",
  RMSNorm: "new RMSNorm(hidden, 1e-6, { offset: 1 }) // Gemma's (1 + w); omit offset for LLaMA",
  MLP: 'new MLP(hidden, 4 * hidden, "gelu_new", { bias: true })',
  GatedMLP: 'new GatedMLP(hidden, ffn, "silu")',
  MoE: "new MoE({ hidden, expertFfn: 1408, numExperts: 60, topK: 4, normalizeTopK: false, sharedFfn: 5632, sharedExpertGate: true })",
  Experts: "this.experts = new Experts(numExperts, hidden, ffn) // .gate/.up [E, I, H], .down [E, H, I]",
  Attention: 'new Attention({ hidden: 64, heads: 4, kvHeads: 2, rope: { style: "neox", rotaryDim: 16, theta: 1e4, scaling: null }, window: 4 })',
  CausalLM: "new CausalLM({ embed, layers, norm, lmHead })",
  src: 'src("model.layers.0.self_attn.q_proj.weight")',
  transpose: 'transpose(src("transformer.h.0.attn.c_attn.weight")) // GPT-2 Conv1D',
  concat: 'concat(0, src("q_proj.weight"), src("k_proj.weight"), src("v_proj.weight"))',
  slice: 'slice(src("qkv_proj.weight"), 0, 0, 4096)',
  pad: 'pad(src("lm_head.weight"), 0, 32064)',
  repeatInterleave: 'repeatInterleave(src("k_proj.weight"), 0, 2)',
  reshape: 'reshape(src("wqkv"), [3, 32, 128, 4096])',
  zeros: "zeros([hidden])",
  perLayer: "...perLayer(c.layers, (i) => ({ [`layers.${i}.norm.weight`]: src(`model.layers.${i}.input_layernorm.weight`) }))",
  ropeFromHF: "rope: ropeFromHF(c) // { theta, scaling } from rope_theta/rope_scaling or rope_parameters",
  rotaryDimFromHF: "rotaryDim: rotaryDimFromHF(c, headDim, 0.25) // GPT-NeoX: rotary_pct 0.25 unless the config says",
  HFRopeFields: "z.looseObject({ ...HFRopeFields, hidden_size: z.number() })",
  slidingWindowsFromHF: "windows: slidingWindowsFromHF(c, c.num_hidden_layers) // [0, 4096, 4096, ...]",
  HFSlidingWindowFields: "z.looseObject({ ...HFSlidingWindowFields, ...LLAMA_FIELDS })",
};

interface Item {
  readonly key: string;
  readonly name: string;
  readonly signature: string;
  readonly doc: string;
}

const oneLine = (s: string) => s.replace(/\s+/g, " ").trim();
const jsdoc = (n: JSDocableNode) =>
  oneLine(
    n
      .getJsDocs()
      .map((d) => d.getDescription())
      .join(" "),
  );
/** The IR op a DSL function emits (first string literal naming an op in its body), for its doc. */
function opDoc(text: string): string {
  for (const m of text.matchAll(/"([a-z_]+)"/g)) if (m[1]! in CORE_OPS) return `IR op \`${m[1]}\`: ${CORE_OPS[m[1] as keyof typeof CORE_OPS].doc}`;
  return "";
}

function tensorItems(f: SourceFile): Item[] {
  const cls = f.getClassOrThrow("Tensor");
  const getters = cls
    .getGetAccessors()
    .map((g) => ({ key: `Tensor.${g.getName()}`, name: g.getName(), signature: `x.${g.getName()}: ${g.getReturnTypeNode()?.getText() ?? ""}`, doc: jsdoc(g) }));
  const methods = cls.getMethods().map((m) => ({
    key: `Tensor.${m.getName()}`,
    name: m.getName(),
    signature: oneLine(
      `x.${m.getName()}(${m
        .getParameters()
        .map((p) => p.getText())
        .join(", ")}): ${m.getReturnTypeNode()?.getText() ?? ""}`,
    ),
    doc: jsdoc(m) || opDoc(m.getBodyText() ?? ""),
  }));
  return [...getters, ...methods];
}

function functionalItems(f: SourceFile): Item[] {
  return f
    .getVariableStatements()
    .filter((s) => s.isExported())
    .flatMap((s) =>
      s.getDeclarations().map((d) => {
        const init = d.getInitializer();
        const arrow = init && Node.isArrowFunction(init) ? init : undefined;
        const signature = arrow
          ? oneLine(
              `F.${d.getName()}(${arrow
                .getParameters()
                .map((p) => p.getText())
                .join(", ")}): ${arrow.getReturnTypeNode()?.getText() ?? ""}`,
            )
          : `F.${d.getName()}`;
        const keys = d.getName() === "ACTIVATIONS" && init && Node.isAsExpression(init) ? init.getExpression() : init;
        const names =
          keys && Node.isObjectLiteralExpression(keys)
            ? ` (${keys
                .getProperties()
                .map((p) => (Node.isPropertyAssignment(p) ? p.getName() : ""))
                .join(", ")})`
            : "";
        return { key: `F.${d.getName()}`, name: d.getName(), signature, doc: (jsdoc(s) || opDoc(arrow?.getText() ?? "")) + names };
      }),
    );
}

function moduleItems(files: SourceFile[]): Item[] {
  return files.flatMap((f) =>
    f
      .getClasses()
      .filter((c) => c.isExported())
      .map((c) => {
        const ctor = c.getConstructors()[0];
        const params = ctor
          ? ctor
              .getParameters()
              .map((p) => oneLine(p.getText().replace(/^readonly |^private readonly /, "")))
              .join(", ")
          : "";
        // Options objects declared as interfaces (AttentionConfig, CausalLMParts) are listed field by field.
        const optionTypes =
          ctor
            ?.getParameters()
            .map((p) => p.getTypeNode()?.getText().replace(/<.*>$/, ""))
            .filter((t): t is string => !!t && /^[A-Z]/.test(t)) ?? [];
        const options = optionTypes.flatMap(
          (t) =>
            f
              .getInterface(t)
              ?.getProperties()
              .map(
                (p) => `\`${p.getName()}${p.hasQuestionToken() ? "?" : ""}: ${oneLine(p.getTypeNode()?.getText() ?? "")}\`${jsdoc(p) ? ` ${jsdoc(p)}` : ""}`,
              ) ?? [],
        );
        const fileDoc = oneLine(
          f
            .getFullText()
            .split("\n")
            .filter((l) => l.startsWith("//"))
            .map((l) => l.slice(2))
            .join(" "),
        ).split(". ")[0]!;
        return {
          key: c.getName()!,
          name: c.getName()!,
          signature: `new ${c.getName()}(${params})`,
          doc: [jsdoc(c) || fileDoc.replace(/\.*$/, "."), ...(options.length ? [`Options: ${options.join("; ")}`] : [])].join(" "),
        };
      }),
  );
}

function exportedFunctions(f: SourceFile, names: readonly string[]): Item[] {
  return names.map((name) => {
    const v = f.getVariableDeclaration(name);
    const fn = f.getFunction(name);
    if (fn)
      return {
        key: name,
        name,
        signature: oneLine(
          `${name}(${fn
            .getParameters()
            .map((p) => p.getText())
            .join(", ")}): ${fn.getReturnTypeNode()?.getText() ?? ""}`,
        ),
        doc: jsdoc(fn),
      };
    if (!v) throw new Error(`${f.getBaseName()}: no export '${name}'`);
    const init = v.getInitializer();
    const doc = jsdoc(v.getVariableStatementOrThrow());
    if (init && Node.isArrowFunction(init))
      return {
        key: name,
        name,
        signature: oneLine(
          `${name}(${init
            .getParameters()
            .map((p) => p.getText())
            .join(", ")}): ${init.getReturnTypeNode()?.getText() ?? ""}`,
        ),
        doc,
      };
    return { key: name, name, signature: name, doc };
  });
}

const WEIGHT_DOCS: Record<string, string> = {
  src: "a tensor of the source checkpoint, by name",
  transpose: "swap the two dims of a matrix",
  concat: "join expressions along a dim",
  slice: "rows/columns start..end along a dim",
  pad: "zero-pad a dim up to a size",
  repeatInterleave: "repeat each slice along a dim (KV-head replication)",
  reshape: "same elements, new shape",
  zeros: "a zero tensor (a parameter the checkpoint lacks, e.g. a bias)",
  perLayer: "one entry set per decoder layer, merged",
};

export interface Reference {
  readonly sections: readonly { readonly title: string; readonly intro: string; readonly items: readonly Item[] }[];
}

export function collectReference(): Reference {
  const project = new Project({ tsConfigFilePath: `${ROOT}tsconfig.json`, skipAddingFilesFromTsConfig: true });
  const file = (p: string) => project.addSourceFileAtPath(`${ROOT}${p}`);
  const modules = ["linear", "embedding", "norms", "mlp", "moe", "attention", "causal-lm"].map((m) => file(`src/dsl/modules/${m}.ts`));
  const weights = exportedFunctions(file("src/weights/weight-map.ts"), Object.keys(WEIGHT_DOCS)).map((i) => ({ ...i, doc: i.doc || WEIGHT_DOCS[i.name]! }));
  return {
    sections: [
      {
        title: "Tensor methods",
        intro:
          "A `Tensor` is a traced value; each method appends one typed IR op (shapes and dtypes checked at once). Numbers as operands become scalar constants of the tensor's dtype.",
        items: tensorItems(file("src/dsl/tensor.ts")),
      },
      {
        title: "F.* functions",
        intro: '`import { F } from "kiln"`: ops that take several tensors or read better as calls.',
        items: functionalItems(file("src/dsl/functional.ts")),
      },
      {
        title: "Modules",
        intro: "Library modules (`Module` subclasses). Parameters are named by attribute path (`layers.3.attn.q.weight`).",
        items: moduleItems(modules),
      },
      {
        title: "Weight-map expressions",
        intro:
          "A model's `weights(config)` returns `{ map, ignore }`: for each parameter, an expression over checkpoint tensors, kept as data (fusion and sharding compose with it).",
        items: weights,
      },
      {
        title: "Hugging Face config helpers",
        intro: "zod field sets and readers for config.json values every family shares (transformers 4.x and 5.x forms).",
        items: exportedFunctions(file("src/weights/hf-config.ts"), [
          "HFRopeFields",
          "ropeFromHF",
          "rotaryDimFromHF",
          "HFSlidingWindowFields",
          "slidingWindowsFromHF",
        ]),
      },
    ],
  };
}

const cell = (s: string) => s.replaceAll("|", "\\|");

export function renderReference(r: Reference): string {
  const out = [
    "# Kiln DSL reference",
    "",
    "<!-- Generated by scripts/dsl-reference.ts from the sources; do not edit. Regenerate: npx tsx scripts/dsl-reference.ts -->",
    "",
    "Everything a model file imports from `kiln` to describe an architecture. Signatures are read from the code; a",
    "description without JSDoc is the doc of the IR op the call emits (src/ir/ops.ts).",
    "",
  ];
  for (const s of r.sections) {
    out.push(`## ${s.title}`, "", s.intro, "", "| name | signature | what | example |", "|---|---|---|---|");
    for (const i of s.items) out.push(`| \`${i.name}\` | \`${cell(i.signature)}\` | ${cell(i.doc)} | \`${cell(EXAMPLES[i.key] ?? "")}\` |`);
    out.push("");
  }
  return `${out.join("\n")}`;
}

/** Items that have no example in EXAMPLES (must be empty). */
export const missingExamples = (r: Reference): string[] => r.sections.flatMap((s) => s.items.filter((i) => !EXAMPLES[i.key]).map((i) => i.key));

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = collectReference();
  const missing = missingExamples(r);
  if (missing.length) {
    process.stderr.write(`dsl-reference: no example for ${missing.join(", ")} (add them to EXAMPLES)\n`);
    process.exit(1);
  }
  const text = renderReference(r);
  if (process.argv.includes("--check")) process.exit(readFileSync(REFERENCE_PATH, "utf8") === text ? 0 : 1);
  writeFileSync(REFERENCE_PATH, text);
  process.stdout.write(`wrote ${REFERENCE_PATH}\n`);
}
