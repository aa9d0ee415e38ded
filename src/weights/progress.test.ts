// progress.ts: silent off a TTY; on a TTY the bar shows the current tensor and the byte counts.

import { describe, expect, test } from "vitest";
import { conversionProgress, formatBytes } from "./progress.ts";

function fakeStream(isTTY: boolean) {
  const chunks: string[] = [];
  const stream = { isTTY, columns: 160, write: (c: string | Uint8Array) => (chunks.push(String(c)), true) };
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => chunks.join("") };
}

describe("conversion progress", () => {
  test("writes nothing when the stream is not a TTY", () => {
    const { stream, text } = fakeStream(false);
    const p = conversionProgress(stream);
    p.onProgress(10, 100, "model.embed_tokens.weight");
    p.stop();
    expect(text()).toBe("");
  });

  test("shows bytes, percent and the tensor name on a TTY", () => {
    const { stream, text } = fakeStream(true);
    const p = conversionProgress(stream);
    p.onProgress(250_000_000, 1_000_000_000, "transformer.layers.0.attention.qkv.weight");
    p.onProgress(500_000_000, 1_000_000_000, "transformer.layers.1.mlp.fc.weight");
    p.stop();
    p.stop();
    expect(text()).toContain("50% | 500.0 MB / 1.00 GB | transformer.layers.1.mlp.fc.weight");
  });

  test("formatBytes", () => {
    expect([0, 999, 1536, 3.2e9, 12_345_678].map(formatBytes)).toEqual(["0 B", "999 B", "1.54 KB", "3.20 GB", "12.3 MB"]);
  });
});
