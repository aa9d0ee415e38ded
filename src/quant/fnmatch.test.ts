import { describe, expect, it } from "vitest";
import { fnmatchCase, fnmatchToRegExp } from "./fnmatch.ts";

describe("fnmatchCase (Python fnmatch.fnmatchcase semantics)", () => {
  it.each([
    ["a.b.c", "*", true],
    ["a.b.c", "a*c", true], // * crosses dots
    ["", "*", true],
    ["abc", "a?c", true],
    ["ac", "a?c", false],
    ["axb", "a.b", false], // . is literal
    ["a.b", "a.b", true],
    ["a+b", "a+b", true], // regex metacharacters are literal
    ["a(b", "a(b", true],
    ["a\\b", "a\\b", true], // backslash is literal, not an escape
    ["layers.2", "layers.[0-3]", true],
    ["layers.7", "layers.[0-3]", false],
    ["layers.7", "layers.[!0-3]", true],
    ["layers.2", "layers.[!0-3]", false],
    ["]", "[]]", true], // ] first in a set is literal
    ["x", "[!]]", true],
    ["]", "[!]]", false],
    ["^", "[^a]", true], // ^ is not negation in fnmatch
    ["b", "[^a]", false],
    ["-", "[a-]", true], // trailing - is literal
    ["b", "[z-a]", false], // reversed range matches nothing
    ["[ab", "[ab", true], // unclosed [ is literal
    ["é", "?", true],
    ["a\nb", "a*b", true],
  ])("fnmatchCase(%j, %j) = %s", (name, pattern, expected) => {
    expect(fnmatchCase(name, pattern)).toBe(expected);
  });
});

describe("fnmatchToRegExp", () => {
  it("anchors the whole name", () => {
    expect(fnmatchToRegExp("*lm_head").test("x.lm_head.y")).toBe(false);
    expect(fnmatchToRegExp("*lm_head").test("x.lm_head")).toBe(true);
  });
});
