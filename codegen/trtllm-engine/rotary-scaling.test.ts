// The engine checkpoint's rotary_scaling: the keys 1.2.1's Attention reads per type, and one-line refusals where 1.2.1
// cannot take a scaling (longrope outside Phi-3's class, a yarn attention factor it would not derive, no truncation).

import { describe, expect, it } from "vitest";
import type { JsonValue } from "../../src/ir/attrs.ts";
import { engineRotaryScaling } from "./rotary-scaling.ts";

const yarn = { type: "yarn", factor: 4, originalMaxPositionEmbeddings: 32, betaFast: 32, betaSlow: 1, truncate: true, mscale: 0, mscaleAllDim: 0 };

describe("engineRotaryScaling", () => {
  it("dynamic and yarn in 1.2.1's keys (yarn's factor derived there from mscale / mscale_all_dim)", () => {
    expect(engineRotaryScaling({ type: "dynamic", factor: 2, maxPositions: 8 })).toEqual({ type: "dynamic", factor: 2, alpha: 1 });
    expect(engineRotaryScaling({ ...yarn, attentionFactor: 0.1 * Math.log(4) + 1 } as JsonValue)).toMatchObject({ type: "yarn", mscale: 1, mscale_all_dim: 0 });
  });

  it("refuses what 1.2.1 cannot take, naming the type", () => {
    expect(() => engineRotaryScaling({ ...yarn, attentionFactor: 1.5 } as JsonValue)).toThrow(
      /^rope scaling 'yarn': attention factor 1.5 is not what TensorRT-LLM 1.2.1 derives/,
    );
    expect(() => engineRotaryScaling({ ...yarn, truncate: false, attentionFactor: 0.1 * Math.log(4) + 1 } as JsonValue)).toThrow(
      /^rope scaling 'yarn' with truncate: false/,
    );
    expect(() => engineRotaryScaling({ type: "longrope", shortFactor: [1], longFactor: [2], originalMaxPositionEmbeddings: 8, attentionFactor: 1 })).toThrow(
      /^rope scaling 'longrope' is not supported by the engine target/,
    );
  });
});
