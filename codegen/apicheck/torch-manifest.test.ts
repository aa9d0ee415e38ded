// The PyTorch-backend manifest and what it needed from the checker: extract_manifest.py turns sources into the
// manifest schema (signatures, dataclass __init__, enums, relative imports, child modules); subscripted generic
// bases (`DecoderModelForCausalLM[M, C]`) are checked like the class itself; calling an instance of a torch.nn.Module
// subclass is checked against its forward; trtllm-torch-1.2.json documents the file version behind every module.

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { checkPythonApi } from "./check-api.ts";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "kiln-torch-manifest-"));
const python = process.env.KILN_PYTHON ?? "python3";

function extract(): any {
  const out = join(tmp, "manifest.json");
  execFileSync(python, [here("./extract_manifest.py"), here("./testdata/extract/sources.json"), "--root", here("./testdata/extract"), "--out", out]);
  return JSON.parse(readFileSync(out, "utf8"));
}

describe("extract_manifest.py", () => {
  const m = extract();
  const mod = m.modules["pkg.mod"];

  it("records signatures with parameter kinds and defaults, without self", () => {
    const init = mod.classes.Widget.methods.__init__;
    expect(init.params.map((p: any) => [p.name, p.kind, p.has_default])).toEqual([
      ["size", "keyword_only", false],
      ["color", "keyword_only", true],
      ["extra", "keyword_only", true],
    ]);
    expect(init.params[1].default).toBe("Color.RED");
    expect(init.body.child_modules).toEqual([{ name: "part", callee: "Part", callee_resolved: "pkg.mod.Part" }]);
    expect(mod.classes.Widget.methods.make.kind).toBe("staticmethod");
    expect(mod.classes.Part.methods.__init__.params.map((p: any) => p.kind)).toEqual(["positional_only", "positional_or_keyword"]);
    expect(mod.functions.build.accepts_var_positional).toBe(true);
    expect(mod.private_functions).toEqual(["_private"]);
  });

  it("synthesizes a kw_only dataclass __init__ without init=False fields; enums keep their members", () => {
    expect(mod.classes.Settings.init_defined_in).toBe("pkg.mod.Settings (synthesized)");
    expect(mod.classes.Settings.synthesized_init.params.map((p: any) => [p.name, p.kind, p.has_default])).toEqual([
      ["size", "keyword_only", false],
      ["name", "keyword_only", true],
    ]);
    expect(mod.enums.Color).toMatchObject({
      enum_base: "Enum",
      members: [
        { name: "RED", value: "red" },
        { name: "BLUE", value: "blue" },
      ],
    });
  });

  it("resolves relative imports and re-exports; documents each source file", () => {
    expect(mod.imports.Base).toBe("pkg.sub.base.Base");
    expect(m.resolution["pkg.Widget"]).toEqual({ target: "pkg.mod.Widget", kind: "class" });
    expect(m.resolution["pkg.mod.nn"]).toEqual({ target: "torch.nn", kind: "external" });
    expect(m.source["pkg/mod.py"]).toMatchObject({
      commit: "0000000000000000000000000000000000000000",
      chars: readFileSync(here("./testdata/extract/pkg/mod.py"), "utf8").length,
    });
    expect(m.module_prefixes).toEqual(["pkg"]);
  });

  it("gives pydantic models a keyword-only __init__ of their fields; --keep extends a manifest without the old sources", () => {
    const root = join(tmp, "pyd");
    const later = join(tmp, "pyd-later");
    mkdirSync(join(root, "q"), { recursive: true });
    mkdirSync(join(later, "q"), { recursive: true });
    writeFileSync(
      join(root, "q", "cfg.py"),
      [
        "from pydantic import BaseModel, Field",
        "",
        "",
        "class Cfg(BaseModel):",
        "    dirs: list = Field(default_factory=list)",
        "    rank: int = 64",
        "    name: str = Field(...)",
        "    extra: int = Field(3)",
        "",
      ].join("\n"),
    );
    writeFileSync(join(later, "q", "req.py"), "from dataclasses import dataclass\n\n\n@dataclass\nclass Req:\n    name: str\n    id: int\n");
    const files = [
      { module: "q.cfg", path: "q/cfg.py", commit: null, parsed: "whole file" },
      { module: "q.req", path: "q/req.py", commit: null, parsed: "whole file" },
    ];
    const spec = (n: number) => {
      const f = join(tmp, `pyd-sources-${n}.json`);
      writeFileSync(f, JSON.stringify({ manifest: "t", target_release: "t", module_prefixes: ["q"], files: files.slice(0, n) }));
      return f;
    };
    const first = join(tmp, "pyd-1.json");
    execFileSync(python, [here("./extract_manifest.py"), spec(1), "--root", root, "--out", first]);
    const m1 = JSON.parse(readFileSync(first, "utf8"));
    expect(m1.modules["q.cfg"].classes.Cfg.synthesized_init.params.map((p: any) => [p.name, p.kind, p.has_default])).toEqual([
      ["dirs", "keyword_only", true],
      ["rank", "keyword_only", true],
      ["name", "keyword_only", false],
      ["extra", "keyword_only", true],
    ]);
    const second = join(tmp, "pyd-2.json");
    execFileSync(python, [here("./extract_manifest.py"), spec(2), "--root", later, "--keep", first, "--out", second]);
    const m2 = JSON.parse(readFileSync(second, "utf8"));
    expect(m2.modules["q.cfg"]).toEqual(m1.modules["q.cfg"]);
    expect(m2.source["q/cfg.py"]).toEqual(m1.source["q/cfg.py"]);
    expect(Object.keys(m2.modules["q.req"].classes)).toEqual(["Req"]);
    expect(m2.resolution["q.cfg.Cfg"]).toEqual({ target: "q.cfg.Cfg", kind: "class" });
    // Without --keep the file absent under --root is an error naming it.
    expect(() => execFileSync(python, [here("./extract_manifest.py"), spec(2), "--root", later, "--out", join(tmp, "pyd-3.json")], { stdio: "pipe" })).toThrow(
      /q\/cfg.py is listed/,
    );
  });

  it("checks subclasses through subscripted bases, and calls of torch.nn.Module children through their forward", () => {
    const manifest = join(tmp, "manifest.json");
    const file = join(tmp, "user.py");
    writeFileSync(
      file,
      [
        "from pkg.mod import Widget, build",
        "",
        "",
        "class Mine(Widget[int]):",
        "    def __init__(self):",
        "        super().__init__(size=1, colour=None)",
        "",
        "",
        "w = Widget(size=2)",
        "w(1, scale=2.0, anything=3)",
        "w.part(1, scale=2.0)",
        "w.part(1, 2)",
        "Widget(size=3).part(x=1, nope=1)",
        "build(w, 1, 2, flag=True)",
        "",
      ].join("\n"),
    );
    const r = checkPythonApi(file, { manifest });
    expect(r.problems.map((p) => [p.line, p.message.split(" [")[0]])).toEqual([
      [6, "super().__init__(): unknown keyword argument 'colour' (did you mean 'color'?)"],
      [12, "w.part(): takes at most 1 positional argument(s), 2 given; keyword-only: scale"],
      [13, "Widget(size=3).part(): unknown keyword argument 'nope'"],
    ]);
  });
});

describe("trtllm-torch-1.2.json", () => {
  const m = JSON.parse(readFileSync(here("./trtllm-torch-1.2.json"), "utf8"));
  const spec = JSON.parse(readFileSync(here("./trtllm-torch-1.2.sources.json"), "utf8"));

  it("covers tensorrt_llm._torch and the LLM API's LoRA types, and every module names the file version it was read from", () => {
    expect(m.module_prefixes).toEqual(["tensorrt_llm._torch", "tensorrt_llm.lora_helper", "tensorrt_llm.executor"]);
    expect(Object.keys(m.modules).sort()).toEqual(spec.files.map((f: any) => f.module).sort());
    for (const f of spec.files) expect(m.source[f.path]).toMatchObject({ version_hint: f.version_hint, parsed: f.parsed });
  });

  it("holds the constructor keywords the generated code relies on", () => {
    const init = (mod: string, cls: string) => m.modules[mod].classes[cls].methods.__init__.params.map((p: any) => p.name);
    expect(init("tensorrt_llm._torch.modules.attention", "Attention")).toEqual(
      expect.arrayContaining([
        "hidden_size",
        "num_attention_heads",
        "num_key_value_heads",
        "max_position_embeddings",
        "bias",
        "pos_embd_params",
        "layer_idx",
        "dtype",
        "dense_bias",
        "config",
        "q_scaling",
      ]),
    );
    expect(init("tensorrt_llm._torch.models.modeling_utils", "DecoderModelForCausalLM")).toEqual(["model", "config", "hidden_size", "vocab_size"]);
    // QK-norm (Qwen3): QKNormRoPEAttention's keywords on top of Attention's.
    expect(init("tensorrt_llm._torch.modules.qk_norm_attention", "QKNormRoPEAttention")).toEqual(
      expect.arrayContaining(["hidden_size", "num_key_value_heads", "pos_embd_params", "skip_rope", "fuse_qk_norm_rope", "config", "q_scaling"]),
    );
    expect(m.modules["tensorrt_llm._torch.attention_backend.interface"].classes.RopeParams.synthesized_init.params.map((p: any) => p.name)).toEqual(
      expect.arrayContaining(["dim", "theta", "scale_type", "scale", "low_freq_factor", "high_freq_factor", "max_positions", "original_max_positions"]),
    );
    expect(init("tensorrt_llm._torch.peft.lora.layer", "LoraLayer")).toEqual(["lora_module_types", "output_hidden_sizes"]);
    expect(m.modules["tensorrt_llm._torch.peft.lora.layer"].enums.LoraModuleType.members.slice(0, 8).map((x: any) => [x.name, x.value])).toEqual([
      ["ATTENTION_QKV", 0],
      ["ATTENTION_Q", 1],
      ["ATTENTION_K", 2],
      ["ATTENTION_V", 3],
      ["ATTENTION_DENSE", 4],
      ["MLP_H_TO_4H", 5],
      ["MLP_4H_TO_H", 6],
      ["MLP_GATE", 7],
    ]);
    const fields = (mod: string, cls: string) => m.modules[mod].classes[cls].synthesized_init.params.map((p: any) => [p.name, p.kind, p.has_default]);
    expect(fields("tensorrt_llm.lora_helper", "LoraConfig")).toEqual(
      expect.arrayContaining([
        ["lora_dir", "keyword_only", true],
        ["max_lora_rank", "keyword_only", true],
        ["lora_target_modules", "keyword_only", true],
        ["trtllm_modules_to_hf_modules", "keyword_only", true],
        ["max_loras", "keyword_only", true],
        ["max_cpu_loras", "keyword_only", true],
      ]),
    );
    expect(fields("tensorrt_llm.executor.request", "LoRARequest")).toEqual([
      ["lora_name", "positional_or_keyword", false],
      ["lora_int_id", "positional_or_keyword", false],
      ["lora_path", "positional_or_keyword", true],
      ["lora_ckpt_source", "positional_or_keyword", true],
    ]);
  });
});
