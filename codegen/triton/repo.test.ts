// writeTritonRepo on disk (layout, parse-back, atomic replace, engine
// cross-checks), the launch command, and the emitted model.py files: compiled by
// python3 and run against stand-ins for Triton's pb_utils and transformers.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tritonConfigs } from "./configs.ts";
import { launchCommand } from "./launch.ts";
import { modelConfigType } from "./model-config.ts";
import { TritonOptionError } from "./options.ts";
import type { TritonRepoOptions } from "./options.ts";
import { parseTextFormat } from "./pbtxt.ts";
import { TritonRepoError, tritonRepoFiles, writeTritonRepo } from "./repo.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "kiln-triton-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const opts = (extra: Partial<TritonRepoOptions> = {}): TritonRepoOptions => ({
  repo: join(dir, "repo"),
  engineDir: "/srv/engines/llama",
  tokenizerDir: "/srv/hf/llama",
  ...extra,
});

const LAYOUT = [
  "ensemble/1/.gitkeep",
  "ensemble/config.pbtxt",
  "postprocessing/1/model.py",
  "postprocessing/config.pbtxt",
  "preprocessing/1/model.py",
  "preprocessing/config.pbtxt",
  "tensorrt_llm/1/.gitkeep",
  "tensorrt_llm/config.pbtxt",
];

describe("writeTritonRepo", () => {
  it("writes the four models, each config.pbtxt parsing back to the config it came from", () => {
    const o = opts({ decoupled: true, kvCacheFreeGpuMemFraction: 0.5, tp: 2 });
    const summary = writeTritonRepo(o);
    expect(summary.repo).toBe(join(dir, "repo"));
    expect(summary.files).toEqual(LAYOUT);
    expect(summary.worldSize).toBe(2);
    const expected = tritonConfigs(o);
    for (const name of ["ensemble", "preprocessing", "tensorrt_llm", "postprocessing"] as const) {
      const path = join(summary.repo, name, "config.pbtxt");
      const text = readFileSync(path, "utf8");
      expect(text.startsWith(`# Triton model "${name}"`)).toBe(true);
      expect(parseTextFormat(modelConfigType(), text, path)).toEqual(expected[name]);
    }
    expect(readdirSync(dir)).toEqual(["repo"]); // no temp directory left behind
    expect(summary.text).toContain("python3 scripts/launch_triton_server.py --world_size=2");
    expect(summary.text).toContain("decoupled true");
  });

  it("refuses to overwrite an existing repository unless forced, then replaces it whole", () => {
    const repo = join(dir, "repo");
    mkdirSync(join(repo, "old_model"), { recursive: true });
    writeFileSync(join(repo, "old_model", "config.pbtxt"), "stale");
    expect(() => writeTritonRepo(opts())).toThrow(TritonRepoError);
    expect(() => writeTritonRepo(opts())).toThrow(/exists and was not written by Kiln .*pass --force/);
    expect(readFileSync(join(repo, "old_model", "config.pbtxt"), "utf8")).toBe("stale");
    writeTritonRepo(opts({ force: true }));
    expect(existsSync(join(repo, "old_model"))).toBe(false);
    expect(existsSync(join(repo, "tensorrt_llm", "config.pbtxt"))).toBe(true);
    expect(readdirSync(dir)).toEqual(["repo"]);
  });

  it("writes nothing when the options are invalid", () => {
    expect(() => writeTritonRepo(opts({ kvCacheFreeGpuMemFraction: 1.5 }))).toThrow(TritonOptionError);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("takes tp/pp from the engine's config.json and rejects contradicting options", () => {
    const engineDir = join(dir, "engine");
    mkdirSync(engineDir);
    const config = {
      version: "1.2.1",
      pretrained_config: { architecture: "LlamaForCausalLM", mapping: { world_size: 4, tp_size: 2, pp_size: 2 } },
      build_config: { max_batch_size: 256, max_beam_width: 2 },
    };
    writeFileSync(join(engineDir, "config.json"), JSON.stringify(config));
    const summary = writeTritonRepo(opts({ engineDir }));
    expect(summary.worldSize).toBe(4);
    expect(summary.launch.script).toContain("--world_size=4");
    expect(() => writeTritonRepo(opts({ engineDir, tp: 4, force: true }))).toThrow(/tp=4 contradicts .*config\.json \(tp_size 2\)/);
    expect(() => writeTritonRepo(opts({ engineDir, maxBeamWidth: 4, force: true }))).toThrow(/maxBeamWidth=4 exceeds the engine's max_beam_width 2/);
    writeFileSync(join(engineDir, "config.json"), "{ not json");
    expect(() => writeTritonRepo(opts({ engineDir, force: true }))).toThrow(/config\.json: not valid JSON/);
  });
});

describe("launchCommand", () => {
  it("uses world size tp*pp, loads only tensorrt_llm on ranks > 0, and quotes paths", () => {
    const cmd = launchCommand({ repo: "/models/my repo", tp: 2, pp: 1 });
    expect(cmd.worldSize).toBe(2);
    expect(cmd.script).toBe("python3 scripts/launch_triton_server.py --world_size=2 '--model_repo=/models/my repo'");
    expect(cmd.mpirun).toBe(
      "mpirun --allow-run-as-root " +
        "-n 1 tritonserver '--model-repository=/models/my repo' --disable-auto-complete-config " +
        "--backend-config=python,shm-region-prefix-name=prefix0_ : " +
        "-n 1 tritonserver '--model-repository=/models/my repo' --model-control-mode=explicit --load-model=tensorrt_llm " +
        "--disable-auto-complete-config --backend-config=python,shm-region-prefix-name=prefix1_",
    );
    expect(launchCommand({ repo: "r", tp: 4, pp: 2 }).worldSize).toBe(8);
    expect(launchCommand({ repo: "it's" }).script).toBe(`python3 scripts/launch_triton_server.py --world_size=1 '--model_repo=it'"'"'s'`);
  });
});

const python = spawnSync("python3", ["-c", "import numpy"], { encoding: "utf8" });
const hasPython = python.status === 0;

// Stand-ins for Triton's Python-backend module and a character-level tokenizer
// (bos=1, eos=2, no pad token), enough to execute model.py outside tritonserver.
const PB_UTILS_STUB = `
import numpy as np
class Tensor:
    def __init__(self, name, array):
        self._name, self._array = name, array
    def name(self):
        return self._name
    def as_numpy(self):
        return self._array
class TritonError:
    def __init__(self, message):
        self.message = message
class InferenceResponse:
    def __init__(self, output_tensors, error=None):
        self.output_tensors, self.error = output_tensors, error
def get_input_tensor_by_name(request, name):
    return Tensor(name, request[name]) if name in request else None
def triton_string_to_numpy(t):
    return {"TYPE_INT32": np.int32, "TYPE_STRING": np.object_}[t]
`;
const TRANSFORMERS_STUB = `
class CharTokenizer:
    eos_token, eos_token_id, pad_token = "</s>", 2, None
    @property
    def pad_token_id(self):
        return 2 if self.pad_token == self.eos_token else None
    def encode(self, text, add_special_tokens=True):
        return ([1] if add_special_tokens else []) + [ord(c) for c in text]
    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(i) for i in ids if not (skip_special_tokens and i in (1, 2)))
class AutoTokenizer:
    loaded_from = []
    @classmethod
    def from_pretrained(cls, path, **kwargs):
        cls.loaded_from.append(path)
        return CharTokenizer()
`;
const DRIVER = `
import importlib.util, json, sys
import numpy as np
import triton_python_backend_utils as pb
from transformers import AutoTokenizer

def load(path, config):
    spec = importlib.util.spec_from_file_location("m" + str(abs(hash(path))), path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = mod.TritonPythonModel()
    model.initialize({"model_config": json.dumps(config)})
    return model

def run(model, request):
    (response,) = model.execute([request])
    if response.error is not None:
        return {"error": response.error.message}
    return {t.name(): {"dtype": str(t.as_numpy().dtype), "value": plain(t.as_numpy().tolist())} for t in response.output_tensors}

def plain(x):
    if isinstance(x, list):
        return [plain(v) for v in x]
    return x.decode() if isinstance(x, bytes) else x

repo, pre_cfg, pre_cfg_raw, post_cfg = sys.argv[1], *[json.loads(a) for a in sys.argv[2:5]]
pre = load(repo + "/preprocessing/1/model.py", pre_cfg)
post = load(repo + "/postprocessing/1/model.py", post_cfg)
raw = load(repo + "/preprocessing/1/model.py", pre_cfg_raw)
obj = lambda rows: np.array(rows, dtype=np.object_)
print(json.dumps({
    "tokenizer_dirs": AutoTokenizer.loaded_from,
    "pre": run(pre, {"QUERY": obj([[b"hi"], [b"abc"]]), "REQUEST_OUTPUT_LEN": np.array([[5], [7]], np.int32),
                     "STOP_WORDS_DICT": obj([[b"x", b"yz"], [b"q", b""]])}),
    "pre_ids": run(pre, {"QUERY": obj([[b"z"]]), "REQUEST_OUTPUT_LEN": np.array([[1]], np.int32),
                         "END_ID": np.array([[9]], np.int32), "PAD_ID": np.array([[8]], np.int32)}),
    "pre_empty": run(raw, {"QUERY": obj([[b""]]), "REQUEST_OUTPUT_LEN": np.array([[1]], np.int32)}),
    "post": run(post, {"TOKENS_BATCH": np.array([[[104, 105, 2, 0]], [[1, 97, 2, 2]]], np.int32),
                       "SEQUENCE_LENGTH": np.array([[3], [3]], np.int32)}),
}))
`;

describe.skipIf(!hasPython)("emitted model.py (python3 + numpy)", () => {
  it("compiles with py_compile", () => {
    const files = tritonRepoFiles(opts());
    for (const path of ["preprocessing/1/model.py", "postprocessing/1/model.py"]) {
      const file = join(dir, path.replaceAll("/", "_"));
      writeFileSync(file, files.get(path)!);
      const r = spawnSync("python3", ["-m", "py_compile", file], { encoding: "utf8" });
      expect(r.stderr, path).toBe("");
      expect(r.status, path).toBe(0);
    }
  });

  it("tokenizes, builds word lists and detokenizes as the configs declare", () => {
    const summary = writeTritonRepo(opts());
    const stubs = join(dir, "stubs");
    mkdirSync(join(stubs, "transformers"), { recursive: true });
    writeFileSync(join(stubs, "triton_python_backend_utils.py"), PB_UTILS_STUB);
    writeFileSync(join(stubs, "transformers", "__init__.py"), TRANSFORMERS_STUB);
    writeFileSync(join(dir, "driver.py"), DRIVER);
    const c = tritonConfigs(opts());
    const raw = tritonConfigs(opts({ addSpecialTokens: false }));
    const r = spawnSync(
      "python3",
      [join(dir, "driver.py"), summary.repo, JSON.stringify(c.preprocessing), JSON.stringify(raw.preprocessing), JSON.stringify(c.postprocessing)],
      { encoding: "utf8", env: { ...process.env, PYTHONPATH: stubs, PYTHONDONTWRITEBYTECODE: "1" } },
    );
    expect(r.stderr).toBe("");
    const out = JSON.parse(r.stdout);
    expect(out.tokenizer_dirs).toEqual(["/srv/hf/llama", "/srv/hf/llama", "/srv/hf/llama"]);
    const i32 = (value: unknown) => ({ dtype: "int32", value });
    expect(out.pre).toEqual({
      INPUT_ID: i32([
        [1, 104, 105, 2],
        [1, 97, 98, 99],
      ]), // bos + chars, right-padded with eos as pad
      REQUEST_INPUT_LEN: i32([[3], [4]]),
      REQUEST_OUTPUT_LEN: i32([[5], [7]]),
      BAD_WORDS_IDS: i32([
        [[], []],
        [[], []],
      ]),
      STOP_WORDS_IDS: i32([
        [
          [120, 121, 122],
          [1, 3, -1],
        ],
        [
          [113, 0, 0],
          [1, -1, -1],
        ],
      ]),
      OUT_END_ID: i32([[2], [2]]),
      OUT_PAD_ID: i32([[2], [2]]),
    });
    // Every tensor preprocessing returns is one its config declares, and vice versa.
    expect(Object.keys(out.pre).sort()).toEqual(c.preprocessing.output.map((t) => t.name).sort());
    expect(out.pre_ids.OUT_END_ID).toEqual(i32([[9]]));
    expect(out.pre_ids.OUT_PAD_ID).toEqual(i32([[8]]));
    expect(out.pre_empty).toEqual({ error: "preprocessing: QUERY tokenizes to zero tokens" });
    expect(out.post).toEqual({ OUTPUT: { dtype: "object", value: [["hi"], ["a"]] } });
  });
});
