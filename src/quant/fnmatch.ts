// Python's fnmatch.fnmatchcase, which TensorRT-LLM uses to match `exclude_modules` patterns against module paths
// (quantization/quantize.py `quantize_layers`, QuantConfig.is_module_excluded_from_quantization) and tensor names
// (models/convert_utils.py `weight_only_quantize_dict`).
// Semantics (from fnmatch.translate): the whole name must match; case-sensitive; `*` matches any run of
// characters, dots included; `?` one character; `[seq]` / `[!seq]` a set or its complement, with `a-z` ranges,
// a `]` right after `[` or `[!` taken literally, a reversed range matching nothing, and a `[` with no closing `]`
// taken literally. Everything else, `.` `\` `^` included, is literal.

const escapeChar = (ch: string): string => `\\u{${ch.codePointAt(0)!.toString(16)}}`;

/** Translate one `[...]` set starting at pat[start] === "["; null if it never closes (then "[" is literal). */
function translateSet(pat: string, start: number): { source: string; end: number } | null {
  let j = start + 1;
  const negate = pat[j] === "!";
  if (negate) j++;
  const bodyStart = j;
  if (pat[j] === "]") j++;
  while (j < pat.length && pat[j] !== "]") j++;
  if (j >= pat.length) return null;
  const body = [...pat.slice(bodyStart, j)];
  const items: string[] = [];
  for (let k = 0; k < body.length; ) {
    if (k + 2 < body.length && body[k + 1] === "-") {
      const [lo, hi] = [body[k]!, body[k + 2]!];
      if (lo.codePointAt(0)! <= hi.codePointAt(0)!) items.push(`${escapeChar(lo)}-${escapeChar(hi)}`);
      k += 3;
    } else {
      items.push(escapeChar(body[k]!));
      k++;
    }
  }
  const end = j + 1;
  if (items.length === 0) return { source: negate ? "." : "(?!)", end };
  return { source: `[${negate ? "^" : ""}${items.join("")}]`, end };
}

/** The RegExp that fnmatchcase(name, pattern) evaluates. */
export function fnmatchToRegExp(pattern: string): RegExp {
  let source = "";
  for (let i = 0; i < pattern.length; ) {
    const ch = pattern[i]!;
    if (ch === "*") {
      source += ".*";
      i++;
    } else if (ch === "?") {
      source += ".";
      i++;
    } else if (ch === "[") {
      const set = translateSet(pattern, i);
      source += set ? set.source : escapeChar("[");
      i = set ? set.end : i + 1;
    } else {
      const cp = pattern.codePointAt(i)!;
      source += escapeChar(String.fromCodePoint(cp));
      i += cp > 0xffff ? 2 : 1;
    }
  }
  return new RegExp(`^(?:${source})$`, "su");
}

/** Python's fnmatch.fnmatchcase(name, pattern). */
export const fnmatchCase = (name: string, pattern: string): boolean => fnmatchToRegExp(pattern).test(name);
