// Tokenizer for protobuf text format, plus the string-literal codec shared by the
// printer and the parser.
// Invariants: `#` starts a comment to end of line; string literals decode C-style
// escapes (\n \t \" \\ \ooo \xHH \uHHHH ...) as bytes and then as strict UTF-8, so
// quoteString(s) always lexes back to exactly s. Every error names source:line:col.

export class TextFormatError extends Error {
  override name = "TextFormatError";
}

export type TokenKind = "ident" | "number" | "string" | "punct";

export interface Token {
  kind: TokenKind;
  /** Source text of the token; for strings the decoded value. */
  text: string;
  line: number;
  col: number;
}

const PUNCT = new Set(["{", "}", "[", "]", "<", ">", ":", ",", ";", "-"]);
const IDENT_RE = /[A-Za-z_][A-Za-z0-9_]*/y;
// Decimal/hex integers and floats, optional sign, optional float suffix f/F.
const NUMBER_RE = /-?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fF]?)(?![A-Za-z0-9_])/y;
const WS_RE = /(?:[ \t\r\n\f\v]+|#[^\n]*)+/y;

const SIMPLE_UNESCAPES: Record<string, number> = {
  n: 0x0a,
  r: 0x0d,
  t: 0x09,
  a: 0x07,
  b: 0x08,
  f: 0x0c,
  v: 0x0b,
  "\\": 0x5c,
  "'": 0x27,
  '"': 0x22,
  "?": 0x3f,
};

const SIMPLE_ESCAPES: Record<number, string> = { 92: "\\\\", 34: '\\"', 10: "\\n", 13: "\\r", 9: "\\t" };

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Double-quoted text-format literal: printable ASCII as is, everything else escaped (UTF-8 bytes as octal). */
export function quoteString(s: string): string {
  if (LONE_SURROGATE.test(s)) throw new TextFormatError(`string ${JSON.stringify(s)} is not well-formed UTF-16`);
  let out = '"';
  for (const byte of new TextEncoder().encode(s)) {
    const simple = SIMPLE_ESCAPES[byte];
    if (simple !== undefined) out += simple;
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += `\\${byte.toString(8).padStart(3, "0")}`;
  }
  return `${out}"`;
}

export class Lexer {
  private pos = 0;
  private line = 1;
  private lineStart = 0;
  private lookahead: Token | null = null;

  constructor(
    private readonly text: string,
    private readonly source: string,
  ) {}

  error(message: string, at?: Token): TextFormatError {
    const where = at ?? this.peek() ?? { line: this.line, col: this.pos - this.lineStart + 1 };
    return new TextFormatError(`${this.source}:${where.line}:${where.col}: ${message}`);
  }

  peek(): Token | null {
    this.lookahead ??= this.scan();
    return this.lookahead;
  }

  next(): Token {
    const tok = this.peek();
    if (!tok) throw this.error("unexpected end of input");
    this.lookahead = null;
    return tok;
  }

  atEnd(): boolean {
    return this.peek() === null;
  }

  tryPunct(p: string): boolean {
    const tok = this.peek();
    if (tok?.kind !== "punct" || tok.text !== p) return false;
    this.lookahead = null;
    return true;
  }

  expectPunct(p: string, what: string): void {
    if (!this.tryPunct(p)) throw this.error(`expected "${p}" ${what}, found ${describe(this.peek())}`);
  }

  expectIdent(what: string): Token {
    const tok = this.peek();
    if (tok?.kind !== "ident") throw this.error(`expected ${what}, found ${describe(tok)}`);
    return this.next();
  }

  private advanceTo(end: number): void {
    for (let i = this.pos; i < end; i++) {
      if (this.text.charCodeAt(i) === 0x0a) {
        this.line++;
        this.lineStart = i + 1;
      }
    }
    this.pos = end;
  }

  private matchAt(re: RegExp): string | null {
    re.lastIndex = this.pos;
    const m = re.exec(this.text);
    return m ? m[0] : null;
  }

  private scan(): Token | null {
    const ws = this.matchAt(WS_RE);
    if (ws) this.advanceTo(this.pos + ws.length);
    if (this.pos >= this.text.length) return null;
    const start = { line: this.line, col: this.pos - this.lineStart + 1 };
    const ch = this.text[this.pos]!;
    if (ch === '"' || ch === "'") return { kind: "string", text: this.scanString(ch, start), ...start };
    for (const [kind, re] of [
      ["number", NUMBER_RE],
      ["ident", IDENT_RE],
    ] as const) {
      const m = this.matchAt(re);
      if (m) {
        this.advanceTo(this.pos + m.length);
        return { kind, text: m, ...start };
      }
    }
    if (PUNCT.has(ch)) {
      this.advanceTo(this.pos + 1);
      return { kind: "punct", text: ch, ...start };
    }
    throw this.error(`unexpected character ${JSON.stringify(ch)}`, { kind: "punct", text: ch, ...start });
  }

  /** Decodes one quoted literal starting at this.pos into a JS string. */
  private scanString(quote: string, start: { line: number; col: number }): string {
    const bytes: number[] = [];
    const encoder = new TextEncoder();
    let i = this.pos + 1;
    const fail = (msg: string): never => {
      throw this.error(msg, { kind: "string", text: "", ...start });
    };
    for (;;) {
      const ch = this.text[i];
      if (ch === undefined || ch === "\n") fail("unterminated string literal");
      if (ch === quote) break;
      if (ch !== "\\") {
        const cp = this.text.codePointAt(i)!;
        const raw = String.fromCodePoint(cp);
        bytes.push(...encoder.encode(raw));
        i += raw.length;
        continue;
      }
      const esc = this.text[i + 1] ?? "";
      const simple = SIMPLE_UNESCAPES[esc];
      if (simple !== undefined) {
        bytes.push(simple);
        i += 2;
        continue;
      }
      const oct = /^[0-7]{1,3}/.exec(this.text.slice(i + 1, i + 4));
      const hex = /^[xX]([0-9a-fA-F]{1,2})/.exec(this.text.slice(i + 1, i + 4));
      const uni = /^(?:u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))/.exec(this.text.slice(i + 1, i + 10));
      if (oct) {
        const v = parseInt(oct[0], 8);
        if (v > 0xff) fail(`octal escape \\${oct[0]} is larger than a byte`);
        bytes.push(v);
        i += 1 + oct[0].length;
      } else if (hex) {
        bytes.push(parseInt(hex[1]!, 16));
        i += 1 + hex[0].length;
      } else if (uni) {
        const cp = parseInt(uni[1] ?? uni[2]!, 16);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) fail(`invalid unicode escape \\${uni[0]}`);
        bytes.push(...encoder.encode(String.fromCodePoint(cp)));
        i += 1 + uni[0].length;
      } else {
        fail(`unknown escape \\${esc}`);
      }
    }
    this.advanceTo(i + 1);
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(bytes));
    } catch {
      return fail("string literal is not valid UTF-8");
    }
  }
}

function describe(tok: Token | null): string {
  if (!tok) return "end of input";
  return tok.kind === "string" ? `string ${JSON.stringify(tok.text)}` : `"${tok.text}"`;
}
