// copy-ranges.ts + native/copy_ranges.c: the kernel range copier copies exactly the ranges asked for (any
// offsets, zeros, a base offset, ranges from several files), leaves other bytes alone, and fails with errno's
// code and the failing range's index. Skipped when the helper is not built, except under KILN_REQUIRE_NATIVE=1
// (CI), where a missing helper fails here.

import { closeSync, openSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { rangeCopier, type RangeCopyError, ZERO_FD } from "./copy-ranges.ts";

const copier = rangeCopier();
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-copy-ranges-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7 + (i >> 8)) & 0xff);

describe.skipIf(!copier)("kernel range copies", () => {
  test.each([true, false])("ranges from two files, zeros and a base offset land exactly; bytes outside them are untouched (kernel %s)", async (kernel) => {
    const a = bytes(3 << 20, 1); // larger than the 1 MiB bounce buffer and several pages
    const b = bytes(10_001, 2);
    writeFileSync(join(dir, "a"), a);
    writeFileSync(join(dir, "b"), b);
    const out = join(dir, "out");
    writeFileSync(out, new Uint8Array(8 << 20).fill(0xee));
    const [fa, fb, fo] = [openSync(join(dir, "a"), "r"), openSync(join(dir, "b"), "r"), openSync(out, "r+")];
    try {
      // [fdIn, srcPos, dstOffset, length], dstOffset relative to the base 1000. The first range keeps its page
      // offset (source 5000 -> destination 1000 + 4000 + 4096), so the kernel may copy it; the others shift bytes
      // within pages and go through the buffer.
      await copier!.copy(
        fo,
        1000,
        new Float64Array([
          fa,
          5000,
          8096,
          1 << 20,
          fa,
          5,
          0,
          8091,
          ZERO_FD,
          0,
          a.length - 5,
          70_000,
          fb,
          9_999,
          a.length + 69_995,
          2,
          fb,
          0,
          a.length + 69_997,
          3,
        ]),
        { kernel },
      );
    } finally {
      [fa, fb, fo].forEach(closeSync);
    }
    const want = new Uint8Array(8 << 20).fill(0xee);
    want.set(a.subarray(5, 5 + 8091), 1000);
    want.set(a.subarray(5000, 5000 + (1 << 20)), 1000 + 8096);
    want.fill(0, 1000 + a.length - 5, 1000 + a.length - 5 + 70_000);
    want.set(b.subarray(9_999), 1000 + a.length + 69_995);
    want.set(b.subarray(0, 3), 1000 + a.length + 69_997);
    expect(Buffer.from(readFileSync(out)).equals(Buffer.from(want))).toBe(true);
  });

  test.each([true, false])("a source that ends early rejects with EOF and the failing range's index (kernel %s)", async (kernel) => {
    writeFileSync(join(dir, "short"), bytes(100, 3));
    const [fi, fo] = [openSync(join(dir, "short"), "r"), openSync(join(dir, "out2"), "w")];
    try {
      const err = (await copier!.copy(fo, 0, new Float64Array([fi, 0, 0, 50, fi, 60, 50, 41]), { kernel }).catch((e: unknown) => e)) as RangeCopyError;
      expect(err.code).toBe("EOF");
      expect(err.range).toBe(1);
      expect(err.message).toBe("unexpected end of file at byte 100");
    } finally {
      [fi, fo].forEach(closeSync);
    }
  });

  test("with a table, every 16-bit word is translated (across buffer refills and an odd source offset); zeros stay zeros", async () => {
    const words = new Uint16Array(600_001).map((_, i) => (i * 40_503) & 0xffff);
    writeFileSync(join(dir, "words"), Buffer.concat([Buffer.of(9), Buffer.from(words.buffer)])); // odd offset 1
    const table = Uint16Array.from({ length: 65536 }, (_, i) => (i * 3 + 1) & 0xffff);
    table[0] = 0;
    const [fi, fo] = [openSync(join(dir, "words"), "r"), openSync(join(dir, "cast"), "w")];
    try {
      await copier!.copy(fo, 0, new Float64Array([fi, 1, 0, words.byteLength, ZERO_FD, 0, words.byteLength, 6]), { table });
    } finally {
      [fi, fo].forEach(closeSync);
    }
    const got = new Uint16Array(readFileSync(join(dir, "cast")).buffer.slice(0));
    expect(got.length).toBe(words.length + 3);
    expect(got.subarray(0, words.length)).toEqual(words.map((w) => table[w]!));
    expect([...got.subarray(words.length)]).toEqual([0, 0, 0]);
  });

  test("a cast range whose source ends inside a word rejects with EOF", async () => {
    writeFileSync(join(dir, "odd"), Buffer.alloc(11, 1));
    const table = new Uint16Array(65536);
    const [fi, fo] = [openSync(join(dir, "odd"), "r"), openSync(join(dir, "out3"), "w")];
    try {
      const err = (await copier!.copy(fo, 0, new Float64Array([fi, 0, 0, 12]), { table }).catch((e: unknown) => e)) as RangeCopyError;
      expect([err.code, err.range, err.message]).toEqual(["EOF", 0, "unexpected end of file at byte 10"]);
      expect(() => copier!.copy(fo, 0, new Float64Array([fi, 0, 0, 3]), { table })).toThrow(/even/);
      expect(() => copier!.copy(fo, 0, new Float64Array([]), { table: new Uint16Array(10) })).toThrow(/65536 entries/);
    } finally {
      [fi, fo].forEach(closeSync);
    }
  });

  test("preallocate sets the final size; map mode then writes ranges, zeros and casts through a mapping", async () => {
    const a = bytes(600_000, 4);
    writeFileSync(join(dir, "m-src"), a);
    const out = join(dir, "m-out");
    writeFileSync(out, Buffer.from("HEADER"));
    const table = Uint16Array.from({ length: 65536 }, (_, i) => (i ^ 0x5a5a) & 0xffff);
    table[0] = 0;
    const [fi, fo] = [openSync(join(dir, "m-src"), "r"), openSync(out, "r+")];
    try {
      expect(copier!.preallocate(fo, 1_000_000)).toBe(true); // ext4/tmpfs under the test's tmpdir
      expect(statSync(out).size).toBe(1_000_000);
      // Two jobs at once into one file (adjacent windows share a page), as the converter runs them.
      await Promise.all([
        copier!.copy(fo, 6, new Float64Array([fi, 3, 0, 400_000, ZERO_FD, 0, 400_000, 1000]), { map: true }),
        copier!.copy(fo, 401_006, new Float64Array([fi, 1000, 0, 200_000]), { map: true, table }),
      ]);
    } finally {
      [fi, fo].forEach(closeSync);
    }
    const got = readFileSync(out);
    expect(got.subarray(0, 6).toString()).toBe("HEADER");
    expect(got.subarray(6, 400_006).equals(a.subarray(3, 400_003))).toBe(true);
    expect(got.subarray(400_006, 401_006).every((b) => b === 0)).toBe(true);
    const cast = new Uint16Array(a.buffer.slice(1000, 201_000)).map((w) => table[w]!);
    expect(got.subarray(401_006, 601_006).equals(Buffer.from(cast.buffer))).toBe(true);
    expect(got.subarray(601_006).every((b) => b === 0)).toBe(true); // the rest of the reservation reads as zeros
  });

  test("map mode on a file too short for the window falls back to writing (no SIGBUS)", async () => {
    writeFileSync(join(dir, "s-src"), bytes(10_000, 5));
    const [fi, fo] = [openSync(join(dir, "s-src"), "r"), openSync(join(dir, "s-out"), "w")];
    try {
      await copier!.copy(fo, 100, new Float64Array([fi, 0, 0, 10_000]), { map: true });
    } finally {
      [fi, fo].forEach(closeSync);
    }
    expect(readFileSync(join(dir, "s-out")).subarray(100).equals(bytes(10_000, 5))).toBe(true);
  });

  test("a bad descriptor rejects with EBADF; malformed arguments throw at once", async () => {
    const fi = openSync(join(dir, "short"), "r");
    try {
      const err = (await copier!.copy(fi, 0, new Float64Array([fi, 0, 0, 10])).catch((e: unknown) => e)) as RangeCopyError; // fdOut opened read-only
      expect(err.code).toBe("EBADF");
      expect(err.range).toBe(0);
      expect(() => copier!.copy(fi, 0, new Float64Array([fi, 0, 0]))).toThrow(/quadruples/);
      expect(() => copier!.copy(fi, 0, new Float64Array([fi, 0.5, 0, 1]))).toThrow(/non-negative integer/);
      expect(() => copier!.copy(fi, -1, new Float64Array([]))).toThrow(/dstBase/);
    } finally {
      closeSync(fi);
    }
  });
});
