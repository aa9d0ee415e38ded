// Conformance against protoc's C++ TextFormat (the parser family tritonserver
// uses), when protoc is installed (Debian: protobuf-compiler): protoc must read
// our printed configs as the messages we meant, and our parser must read protoc's
// own printing of them.

import { spawnSync } from "node:child_process";
import { dirname } from "node:path";
import { describe, expect, it } from "vitest";
import { tritonConfigs } from "./configs.ts";
import { MODEL_CONFIG_PROTO, modelConfigType } from "./model-config.ts";
import { parseTextFormat, printTextFormat } from "./pbtxt.ts";

const hasProtoc = spawnSync("protoc", ["--version"]).status === 0;

function protoc(mode: "encode" | "decode", input: Buffer | string): Buffer {
  const r = spawnSync("protoc", [`--${mode}=inference.ModelConfig`, `--proto_path=${dirname(MODEL_CONFIG_PROTO)}`, MODEL_CONFIG_PROTO], { input });
  if (r.status !== 0) throw new Error(`protoc --${mode} failed: ${r.stderr.toString()}`);
  return r.stdout;
}

describe.skipIf(!hasProtoc)("protoc conformance", () => {
  const type = modelConfigType();
  const configs = tritonConfigs({
    repo: "/r",
    engineDir: "/e",
    tokenizerDir: '/t "quoted"\\ é',
    decoupled: true,
    maxTokensInPagedKvCache: 1024,
  });
  // Binary form through protobufjs, normalised the same way for both sides (proto3 drops defaults).
  const canonical = (bytes: Uint8Array) => type.toObject(type.decode(bytes), { enums: String, longs: Number });

  it.each(Object.keys(configs))("protoc reads our %s/config.pbtxt as the intended message", (name) => {
    const config = configs[name as keyof typeof configs];
    const fromProtoc = protoc("encode", printTextFormat(type, config));
    expect(canonical(fromProtoc)).toEqual(canonical(type.encode(type.fromObject(config)).finish()));
  });

  it.each(Object.keys(configs))("we read protoc's printing of %s back to the same message", (name) => {
    const config = configs[name as keyof typeof configs];
    const binary = type.encode(type.fromObject(config)).finish();
    const protocText = protoc("decode", Buffer.from(binary)).toString("utf8");
    const parsed = parseTextFormat(type, protocText, `protoc:${name}`);
    expect(canonical(type.encode(type.fromObject(parsed)).finish())).toEqual(canonical(binary));
  });
});
