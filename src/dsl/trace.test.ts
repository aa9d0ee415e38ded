// Tracing: parameter names come from attribute paths, scopes from the module tree, and a shape or dtype mistake in a
// forward throws at once with the op, both shapes and the user's source line.

import { describe, expect, it } from "vitest";
import { Linear } from "./modules/linear.ts";
import { Module } from "./module.ts";
import { Parameter } from "./parameter.ts";
import type { Tensor } from "./tensor.ts";
import { traceModule } from "./trace.ts";

class Block extends Module {
  readonly up = new Linear(4, 8);
  readonly down = new Linear(8, 4, { bias: true });
  forward(x: Tensor): Tensor {
    return this.down.forward(this.up.forward(x).relu());
  }
}

class Net extends Module {
  readonly blocks = [new Block(), new Block()];
  readonly scale = new Parameter([4]);
  forward(x: Tensor): Tensor {
    return this.blocks.reduce((h, b) => b.forward(h), x).mul(this.scale);
  }
}

const X = [{ name: "x", dtype: "f32", shape: ["seq", 4] }] as const;

describe("traceModule", () => {
  it("names parameters by attribute path and records module scopes", () => {
    const g = traceModule(
      new Net(),
      "net",
      X.map((i) => ({ ...i, shape: [...i.shape] })),
    );
    expect(g.params.map((p) => p.name)).toEqual([
      "blocks.0.up.weight",
      "blocks.0.down.weight",
      "blocks.0.down.bias",
      "blocks.1.up.weight",
      "blocks.1.down.weight",
      "blocks.1.down.bias",
      "scale",
    ]);
    expect(g.nodes.map((n) => `${n.op}@${n.scope}`)).toEqual([
      "linear@blocks.0.up",
      "relu@blocks.0",
      "linear@blocks.0.down",
      "linear@blocks.1.up",
      "relu@blocks.1",
      "linear@blocks.1.down",
      "mul@",
    ]);
    expect(g.nodes[1]!.loc?.file).toBe("src/dsl/trace.test.ts");
    expect(g.nodes[1]!.loc?.line).toBe(15);
  });

  it("reports a shape mismatch with the op, both shapes and the model's source line", () => {
    class Bad extends Module {
      readonly w = new Parameter([3]);
      forward(x: Tensor): Tensor {
        return x.add(this.w);
      }
    }
    expect(() => traceModule(new Bad(), "bad", [{ name: "x", dtype: "f32", shape: ["seq", 4] }])).toThrow(
      /^add: shapes \[seq, 4\] and \[3\] do not broadcast; operands: f32\[seq, 4\], f32\[3\] \(src\/dsl\/trace\.test\.ts:62:\d+\)$/,
    );
  });

  it("reports dtype mismatches and bad matmul shapes", () => {
    class Bad extends Module {
      readonly w = new Parameter([5, 2]);
      forward(x: Tensor): Tensor {
        return x.matmul(this.w);
      }
    }
    expect(() => traceModule(new Bad(), "bad", [{ name: "x", dtype: "f32", shape: ["seq", 4] }])).toThrow(
      /^matmul: inner dims differ: \[seq, 4\] @ \[5, 2\].*trace\.test\.ts:74/,
    );
    class Cast extends Module {
      forward(x: Tensor): Tensor {
        return x.add(x.cast("f16"));
      }
    }
    expect(() => traceModule(new Cast(), "bad", [{ name: "x", dtype: "f32", shape: [2] }])).toThrow(/^add: dtype mismatch: f32\[2\] vs f16\[2\]/);
  });

  it("rejects misspelt hints naming the module", () => {
    class Hinted extends Module {
      readonly lin = new Linear(2, 2);
      constructor() {
        super();
        this.lin.hints = { fuse: { qkvv: true } } as never;
      }
      forward(x: Tensor): Tensor {
        return this.lin.forward(x);
      }
    }
    expect(() => traceModule(new Hinted(), "h", [{ name: "x", dtype: "f32", shape: [2] }])).toThrow(/invalid hints on lin: .*qkvv/);
  });

  it("rejects parameters that are not reachable from the module's fields", () => {
    const hidden = new Parameter([2]);
    class Leaky extends Module {
      forward(x: Tensor): Tensor {
        return x.mul(hidden);
      }
    }
    expect(() => traceModule(new Leaky(), "l", [{ name: "x", dtype: "f32", shape: [2] }])).toThrow(/not reachable from the model's attributes/);
  });
});
