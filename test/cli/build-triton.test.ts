// `kiln build` chooses the container, a local TensorRT-LLM 1.2.x, or explains what is missing (with the exact
// commands); `kiln triton` writes a model repository whose tensorrt_llm config carries the flags and the
// checkpoint's world size.

import type { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseTextFormat } from "../../codegen/triton/pbtxt.ts";
import { modelConfigType } from "../../codegen/triton/model-config.ts";
import { BRIDGE_IMAGE, planBuild, probeBuildEnvironment } from "../../src/cli/commands/build.ts";
import { main } from "../../src/cli/main.ts";
import { compileModel } from "../../src/driver/compile.ts";
import llama from "../../models/llama.ts";
import { FIXTURES } from "../golden.ts";

const tmp = mkdtempSync(join(tmpdir(), "kiln-build-"));

type Run = typeof spawnSync;
const fakeRun = (answers: Record<string, { status: number; stdout?: string; error?: Error }>): Run =>
  ((cmd: string) => ({ status: answers[cmd]?.status ?? null, stdout: answers[cmd]?.stdout ?? "", error: answers[cmd]?.error })) as unknown as Run;

describe("kiln build", () => {
  it("uses the pinned container when Docker has the NVIDIA runtime", () => {
    const env = probeBuildEnvironment(fakeRun({ docker: { status: 0, stdout: '{"nvidia":{},"runc":{}}' }, python3: { status: 1 } }), "python3");
    const plan = planBuild(env, "/ckpt/out", "/eng", 2);
    expect(plan.how).toBe("docker");
    expect(plan.argv).toEqual([
      "docker",
      "run",
      "--rm",
      "--gpus",
      "all",
      "--ipc=host",
      "-v",
      "/ckpt/out:/ckpt:ro",
      "-v",
      "/eng:/engines",
      BRIDGE_IMAGE,
      "python3",
      "-m",
      "kiln_bridge",
      "build",
      "--ckpt",
      "/ckpt",
      "--engine-dir",
      "/engines",
      "--workers",
      "2",
    ]);
  });

  it("uses a local Python only when its tensorrt_llm is 1.2.x", () => {
    const ok = probeBuildEnvironment(fakeRun({ docker: { status: 1, error: new Error("ENOENT") }, python3: { status: 0, stdout: "1.2.1\n" } }), "python3");
    expect(planBuild(ok, "/c", "/e", 1)).toMatchObject({
      how: "local",
      argv: ["python3", "-m", "kiln_bridge", "build", "--ckpt", "/c", "--engine-dir", "/e", "--workers", "1"],
    });
    const tooNew = probeBuildEnvironment(fakeRun({ docker: { status: 1, error: new Error("ENOENT") }, python3: { status: 0, stdout: "1.3.0\n" } }), "python3");
    expect(tooNew.python).toBeUndefined();
    expect(tooNew.pythonProblem).toMatch(/has tensorrt_llm 1\.3\.0, not 1\.2\.x/);
  });

  it("otherwise says which of the two is missing and prints the commands to run elsewhere", () => {
    const env = probeBuildEnvironment(fakeRun({ docker: { status: 0, stdout: '{"runc":{}}' }, python3: { status: 1 } }), "python3");
    expect(() => planBuild(env, "/c", "/e", 1)).toThrow(
      /Docker has no NVIDIA runtime.*and python3 cannot import tensorrt_llm[\s\S]*docker build -t kiln-bridge:trtllm-1\.2\.1[\s\S]*docker run --rm --gpus all[\s\S]*python3 -m kiln_bridge build --ckpt \/c --engine-dir \/e/,
    );
  });
});

describe("kiln triton", () => {
  it("writes a repository that parses back, with the flags and the checkpoint's world size", async () => {
    const ckpt = join(tmp, "ckpt");
    await compileModel(llama, { hfDir: `${FIXTURES}llama`, outDir: ckpt, mapping: { tp: 2, pp: 1 } });
    let out = "";
    const repo = join(tmp, "repo");
    const code = await main(
      [
        "triton",
        ckpt,
        "--engine-dir",
        "/engines/llama",
        "--tokenizer",
        "/tok",
        "--repo",
        repo,
        "--streaming",
        "--kv-cache-free-gpu-mem-fraction",
        "0.8",
        "--max-batch-size",
        "16",
      ],
      (s) => (out += s),
    );
    expect(code).toBe(0);
    expect(out).toMatch(/--world_size=2 --model_repo=/);
    const cfg = parseTextFormat(modelConfigType(), readFileSync(join(repo, "tensorrt_llm", "config.pbtxt"), "utf8")) as any;
    expect(cfg.maxBatchSize ?? cfg.max_batch_size).toBe(16);
    const params = cfg.parameters as Record<string, { stringValue?: string; string_value?: string }>;
    const p = (k: string) => params[k]?.stringValue ?? params[k]?.string_value;
    expect([p("gpt_model_type"), p("gpt_model_path"), p("kv_cache_free_gpu_mem_fraction")]).toEqual(["inflight_fused_batching", "/engines/llama", "0.8"]);
    expect(JSON.stringify(cfg)).toMatch(/"decoupled":true/);
  });
});
