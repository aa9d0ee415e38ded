// The shared HF config readers against transformers' own rules: per-layer sliding windows (Mistral, Qwen2's
// max_window_layers, transformers 5.x layer_types) and partial rotary in its several spellings.

import { describe, expect, it } from "vitest";
import { ConfigError, ropeFromHF, rotaryDimFromHF, slidingWindowsFromHF } from "./hf-config.ts";

describe("slidingWindowsFromHF", () => {
  it("Mistral: one window for every layer", () => expect(slidingWindowsFromHF({ sliding_window: 4096 }, 3)).toEqual([4096, 4096, 4096]));
  it("no window: all global", () => expect(slidingWindowsFromHF({ sliding_window: null }, 2)).toEqual([0, 0]));
  it("Qwen2 4.x: off unless use_sliding_window, and layers below max_window_layers stay global", () => {
    expect(slidingWindowsFromHF({ sliding_window: 4096, use_sliding_window: false, max_window_layers: 1 }, 3)).toEqual([0, 0, 0]);
    expect(slidingWindowsFromHF({ sliding_window: 64, use_sliding_window: true, max_window_layers: 2 }, 4)).toEqual([0, 0, 64, 64]);
  });
  it("layer_types wins (alternating local/global, Gemma 2 style)", () =>
    expect(
      slidingWindowsFromHF(
        { sliding_window: 8, use_sliding_window: false, layer_types: ["sliding_attention", "full_attention", "sliding_attention", "full_attention"] },
        4,
      ),
    ).toEqual([8, 0, 8, 0]));
  it("rejects a layer_types list of the wrong length or an unknown type, naming config.json", () => {
    expect(() => slidingWindowsFromHF({ sliding_window: 8, layer_types: ["full_attention"] }, 2)).toThrow(
      new ConfigError("config.json: layer_types has 1 entries for 2 layers"),
    );
    expect(() => slidingWindowsFromHF({ sliding_window: 8, layer_types: ["chunked_attention"] }, 1)).toThrow(
      /layer_types\[0\] 'chunked_attention' is not supported/,
    );
    expect(() => slidingWindowsFromHF({ layer_types: ["sliding_attention"] }, 1)).toThrow(/sliding_window is not set/);
  });
});

describe("rotaryDimFromHF", () => {
  it("reads rope_parameters.partial_rotary_factor (5.x), partial_rotary_factor, rotary_pct (4.x), in that order", () => {
    expect(rotaryDimFromHF({ rope_parameters: { partial_rotary_factor: 0.5 }, rotary_pct: 0.25 }, 64)).toBe(32);
    expect(rotaryDimFromHF({ partial_rotary_factor: 0.4 }, 80)).toBe(32);
    expect(rotaryDimFromHF({ rotary_pct: 0.25 }, 128)).toBe(32);
  });
  it("an explicit rotary_dim wins; the default factor applies when nothing is given", () => {
    expect(rotaryDimFromHF({ rotary_dim: 64, rotary_pct: 0.25 }, 256)).toBe(64);
    expect(rotaryDimFromHF({}, 64)).toBe(64);
    expect(rotaryDimFromHF({}, 64, 0.25)).toBe(16);
  });
  it("truncates like transformers' int() and rejects an odd or empty result", () => {
    expect(rotaryDimFromHF({ partial_rotary_factor: 0.3 }, 80)).toBe(24);
    expect(() => rotaryDimFromHF({ partial_rotary_factor: 0.3 }, 70)).toThrow(/21 rotary channels of head_dim 70/);
  });
});

describe("ropeFromHF", () => {
  it("refuses scaling types Kiln does not implement in one line naming config.json", () => {
    expect(() => ropeFromHF({ rope_parameters: { rope_type: "proportional", rope_theta: 1e4 } })).toThrow(
      new ConfigError("config.json: rope scaling type 'proportional' is not supported (supported: default, linear, llama3, dynamic, yarn, longrope)"),
    );
    expect(() => ropeFromHF({ rope_scaling: { type: "longrope", short_factor: [1] }, max_position_embeddings: 8 })).toThrow(
      new ConfigError("config.json: rope scaling 'longrope' needs 'long_factor'"),
    );
  });

  it("yarn: the attention factor from factor alone, or from mscale / mscale_all_dim (modeling_rope_utils.py)", () => {
    const plain = ropeFromHF({ rope_scaling: { rope_type: "yarn", factor: 4, original_max_position_embeddings: 32 }, max_position_embeddings: 128 });
    expect(plain.scaling).toMatchObject({ type: "yarn", betaFast: 32, betaSlow: 1, truncate: true });
    expect((plain.scaling as { attentionFactor: number }).attentionFactor).toBeCloseTo(0.1 * Math.log(4) + 1, 12);
    const deepseek = ropeFromHF({ rope_scaling: { type: "yarn", factor: 40, mscale: 1, mscale_all_dim: 1, original_max_position_embeddings: 4096 } });
    expect((deepseek.scaling as { attentionFactor: number }).attentionFactor).toBe(1);
  });

  it("longrope: Phi-3's top-level original_max_position_embeddings, 'su' through the alias, sqrt(1 + ln s / ln L)", () => {
    const r = ropeFromHF(
      { rope_scaling: { type: "su", short_factor: [1, 2], long_factor: [3, 4] }, max_position_embeddings: 128, original_max_position_embeddings: 8 },
      1e4,
      { su: "longrope" },
    );
    expect(r.scaling).toMatchObject({ type: "longrope", originalMaxPositionEmbeddings: 8, shortFactor: [1, 2], longFactor: [3, 4] });
    expect((r.scaling as { attentionFactor: number }).attentionFactor).toBeCloseTo(Math.sqrt(1 + Math.log(16) / Math.log(8)), 12);
  });

  it("dynamic: the factor and the model's max_position_embeddings", () =>
    expect(ropeFromHF({ rope_scaling: { type: "dynamic", factor: 2 }, max_position_embeddings: 8 }).scaling).toEqual({
      type: "dynamic",
      factor: 2,
      maxPositions: 8,
    }));
});
