// Special-token ids are checked before they are copied into the PyTorch targets' config.json (red-team D16).
import { describe, expect, it } from "vitest";
import { checkTokenId } from "./hf-config.ts";

describe("checkTokenId", () => {
  it("passes null, integers (a parent model's ids, legacy negative ids) and lists of them through", () => {
    expect(checkTokenId("eos_token_id", 2)).toBe(2);
    expect(checkTokenId("bos_token_id", 50256)).toBe(50256);
    expect(checkTokenId("eos_token_id", [2, 7])).toEqual([2, 7]);
    expect(checkTokenId("pad_token_id", null)).toBeNull();
    expect(checkTokenId("pad_token_id", -1)).toBe(-1);
  });

  it("refuses strings, objects, floats and empty or mixed lists, naming the field", () => {
    for (const bad of ["2", "float8; rm -rf /", { id: 2 }, 2.5, [], [2, "x"], true])
      expect(() => checkTokenId("eos_token_id", bad)).toThrow(/^config\.json: eos_token_id must be a token id \(an integer\) or a list of them, got /);
  });
});
