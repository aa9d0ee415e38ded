// IR: the verifier accepts traced graphs and rejects hand-broken ones with messages that name the problem; the
// printer is deterministic; protobuf serialization is lossless.

import { describe, expect, it } from "vitest";
import llama from "../../models/llama.ts";
import gpt2 from "../../models/gpt2.ts";
import { instantiate } from "../driver/instantiate.ts";
import { readHFConfigJson } from "../weights/hf-config.ts";
import { FIXTURES } from "../../test/golden.ts";
import { GraphBuilder, type Graph, type Node } from "./graph.ts";
import { printGraph } from "./print.ts";
import { parseGraph, serializeGraph } from "./serialize.ts";
import { verify, verifyProblems } from "./verify.ts";

const traced = (def: typeof llama, fixture: string) => instantiate(def, readHFConfigJson(`${FIXTURES}${fixture}`)).graph;

function tiny(): Graph {
  const b = new GraphBuilder("tiny");
  const x = b.input("x", { dtype: "f32", shape: ["seq", 4] });
  const w = b.param("w", { dtype: "f32", shape: [3, 4] });
  const [y] = b.node("linear", [x, w], {}, { loc: { file: "m.ts", line: 3, col: 1 } });
  const [z] = b.node("softmax", [y!], { axis: -1 });
  b.output("z", z!);
  return b.build();
}

const withNodes = (g: Graph, nodes: Node[]): Graph => ({ ...g, nodes });

describe("verifier", () => {
  it("accepts every traced fixture model", () => {
    for (const f of ["llama", "llama3_gqa"]) expect(verifyProblems(traced(llama, f))).toEqual([]);
    expect(verifyProblems(traced(gpt2 as never, "gpt2"))).toEqual([]);
  });

  it("rejects an output whose recorded shape disagrees with the op", () => {
    const g = tiny();
    const y = g.nodes[0]!.outputs[0]!;
    const values = new Map(g.values).set(y, { dtype: "f32", shape: ["seq", 5] });
    expect(() => verify({ ...g, values })).toThrow(/node #0 linear at m\.ts:3:1: output %\d+ is f32\[seq, 5\] but the op gives f32\[seq, 3\]/);
  });

  it("rejects a dangling value (used before definition)", () => {
    const g = tiny();
    const [lin, sm] = g.nodes as [Node, Node];
    expect(verifyProblems(withNodes(g, [sm, lin])).join("\n")).toMatch(/node #0 softmax .*uses %\d+ before definition \(dangling value\)/);
  });

  it("rejects wrong input shapes, unknown ops, bad attributes and undefined outputs", () => {
    const g = tiny();
    const [lin, sm] = g.nodes as [Node, Node];
    const w = g.params[0]!.value;
    const badShape = verifyProblems({ ...g, values: new Map(g.values).set(w, { dtype: "f32", shape: [3, 5] }) });
    expect(badShape.join("\n")).toMatch(/linear at m\.ts:3:1: input \[seq, 4\] does not end in the weight's in-features \[3, 5\]/);
    expect(verifyProblems(withNodes(g, [{ ...lin, op: "frobnicate" }, sm]))[0]).toMatch(/unknown op 'frobnicate'/);
    expect(verifyProblems(withNodes(g, [lin, { ...sm, attrs: { axis: "last" } }]))[0]).toMatch(/attribute 'axis': expected int, got "last"/);
    expect(verifyProblems(withNodes(g, [lin, { ...sm, attrs: {} }]))[0]).toMatch(/missing attribute 'axis'/);
    expect(verifyProblems({ ...g, outputs: [{ name: "z", value: 999 }] })).toEqual(["output 'z' refers to undefined %999"]);
  });
});

describe("printer", () => {
  it("prints a small graph deterministically", () => {
    expect(printGraph(tiny())).toMatchInlineSnapshot(`
      "graph tiny {
        input %0: f32[seq, 4] x
        param %1: f32[3, 4] w
        %2: f32[seq, 3] = linear %0, %1  # m.ts:3
        %3: f32[seq, 3] = softmax %2 axis=-1
        output z = %3
      }
      "
    `);
  });

  it("is independent of the value ids a graph happens to use", () => {
    const b = new GraphBuilder("tiny");
    b.input("unused-first", { dtype: "f32", shape: [1] });
    const g = tiny();
    const shifted: Graph = {
      ...g,
      values: new Map([...g.values].map(([k, v]) => [k + 100, v])),
      inputs: g.inputs.map((i) => ({ ...i, value: i.value + 100 })),
      params: g.params.map((i) => ({ ...i, value: i.value + 100 })),
      outputs: g.outputs.map((i) => ({ ...i, value: i.value + 100 })),
      nodes: g.nodes.map((n) => ({ ...n, inputs: n.inputs.map((v) => v + 100), outputs: n.outputs.map((v) => v + 100) })),
    };
    expect(printGraph(shifted)).toBe(printGraph(g));
  });
});

describe("protobuf serialization", () => {
  it("round-trips traced models losslessly (print(parse(serialize(g))) == print(g))", () => {
    for (const g of [traced(llama, "llama3_gqa"), traced(gpt2 as never, "gpt2"), tiny()]) {
      const back = parseGraph(serializeGraph(g));
      expect(printGraph(back)).toBe(printGraph(g));
      expect(back.nodes.map((n) => n.loc)).toEqual(g.nodes.map((n) => n.loc));
      expect(back.hints).toEqual(g.hints);
    }
  });

  it("keeps json attributes, empty lists and symbolic dims intact", () => {
    const g = traced(llama, "llama3_gqa");
    const rope = g.nodes.find((n) => n.op === "rope")!;
    const back = parseGraph(serializeGraph(g));
    expect(back.nodes.find((n) => n.op === "rope")!.attrs).toEqual(rope.attrs);
    expect((rope.attrs.scaling as { type: string }).type).toBe("llama3");
    const reshape = back.nodes.find((n) => n.op === "reshape")!;
    expect(reshape.attrs.shape).toEqual(["batch", "seq", 8, 8]);
  });

  it("rejects bytes that are not a Kiln graph, and graphs that fail verification", () => {
    expect(() => parseGraph(new Uint8Array([0xff, 0xff, 0xff]))).toThrow(/not a Kiln IR protobuf/);
    const g = tiny();
    const broken = { ...g, nodes: [g.nodes[1]!, g.nodes[0]!] };
    expect(() => parseGraph(serializeGraph(broken))).toThrow(/dangling value/);
  });
});
