// Python names and literals for generated code. Every string that reaches emitted Python passes through here:
// identifiers are ASCII, never keywords, never builtins, unique within their Namespace (torch.fx `_Namespace`
// style: illegal characters become `_`, a leading digit gets a `_` prefix, clashes get `_1`, `_2`, ...); string
// literals are escaped so any input (quotes, backslashes, newlines, non-ASCII, lone surrogates) round-trips exactly;
// comment text is one line of printable ASCII; float literals parse back to the same double.
// Invariants: pure functions, deterministic output, no user string is ever pasted into Python unescaped.

export const PYTHON_KEYWORDS: ReadonlySet<string> = new Set(
  "False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield".split(
    " ",
  ),
);

/** Soft keywords are legal names, but a generated name is clearer without them. */
const SOFT_KEYWORDS = ["_", "case", "match", "type"];

/** dir(builtins) of Python 3.13 without dunders: shadowing any of these in generated code is a trap. */
export const PYTHON_BUILTINS: ReadonlySet<string> = new Set(
  (
    "ArithmeticError AssertionError AttributeError BaseException BaseExceptionGroup BlockingIOError BrokenPipeError BufferError " +
    "BytesWarning ChildProcessError ConnectionAbortedError ConnectionError ConnectionRefusedError ConnectionResetError " +
    "DeprecationWarning EOFError Ellipsis EncodingWarning EnvironmentError Exception ExceptionGroup FileExistsError " +
    "FileNotFoundError FloatingPointError FutureWarning GeneratorExit IOError ImportError ImportWarning IndentationError " +
    "IndexError InterruptedError IsADirectoryError KeyError KeyboardInterrupt LookupError MemoryError ModuleNotFoundError " +
    "NameError NotADirectoryError NotImplemented NotImplementedError OSError OverflowError PendingDeprecationWarning " +
    "PermissionError ProcessLookupError PythonFinalizationError RecursionError ReferenceError ResourceWarning RuntimeError " +
    "RuntimeWarning StopAsyncIteration StopIteration SyntaxError SyntaxWarning SystemError SystemExit TabError TimeoutError " +
    "TypeError UnboundLocalError UnicodeDecodeError UnicodeEncodeError UnicodeError UnicodeTranslateError UnicodeWarning " +
    "UserWarning ValueError Warning ZeroDivisionError abs aiter all anext any ascii bin bool breakpoint bytearray bytes " +
    "callable chr classmethod compile complex copyright credits delattr dict dir divmod enumerate eval exec exit filter " +
    "float format frozenset getattr globals hasattr hash help hex id input int isinstance issubclass iter len license list " +
    "locals map max memoryview min next object oct open ord pow print property quit range repr reversed round set setattr " +
    "slice sorted staticmethod str sum super tuple type vars zip"
  ).split(" "),
);

// ---------------------------------------------------------------------------------------------------------------
// Names reserved in generated classes: the one list every target checks a module or parameter attribute against.
// An attribute set on a generated module must not replace what the base class (or Python) already uses there.

/** Attributes and methods of torch.nn.Module (torch 2.x; public and the private state __setattr__ relies on) and of
 *  transformers' PreTrainedModel that a generated attribute must not shadow. */
export const TORCH_MODULE_ATTRIBUTES: ReadonlySet<string> = new Set(
  (
    "T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda double dump_patches eval " +
    "extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half ipu load_state_dict modules mtia " +
    "named_buffers named_children named_modules named_parameters parameters register_backward_hook register_buffer " +
    "register_forward_hook register_forward_pre_hook register_full_backward_hook register_full_backward_pre_hook " +
    "register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module register_parameter " +
    "register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory " +
    "state_dict to to_empty train training type xpu zero_grad " +
    "_parameters _buffers _modules _non_persistent_buffers_set _backward_pre_hooks _backward_hooks _is_full_backward_hook " +
    "_forward_hooks _forward_hooks_with_kwargs _forward_hooks_always_called _forward_pre_hooks _forward_pre_hooks_with_kwargs " +
    "_state_dict_hooks _state_dict_pre_hooks _load_state_dict_pre_hooks _load_state_dict_post_hooks _version " +
    "_compiled_call_impl _call_impl _wrapped_call_impl _apply _named_members _get_name _save_to_state_dict " +
    "_load_from_state_dict _replicate_for_data_parallel " +
    "base_model base_model_prefix config device dtype generation_config main_input_name name_or_path loss_function " +
    "post_init get_input_embeddings set_input_embeddings get_output_embeddings set_output_embeddings model_tags"
  ).split(" "),
);

/** Attributes of TensorRT-LLM 1.2's Module (tensorrt_llm/module.py @ 000a01de66f0: its __init__, methods, and the
 *  dicts its __getattr__/__setattr__ route through) that a generated engine-flow attribute must not shadow. */
export const TRTLLM_MODULE_ATTRIBUTES: ReadonlySet<string> = new Set(
  (
    "forward named_modules named_modules_with_parent named_children parameters named_parameters children apply " +
    "register_parameter register_network_output named_network_outputs update_parameters " +
    "_modules _parameters _network_outputs _named_members _get_name config"
  ).split(" "),
);

export type ClassFamily = "torch" | "trtllm";

const FAMILY_ATTRIBUTES: Readonly<Record<ClassFamily, { names: ReadonlySet<string>; what: string }>> = {
  torch: { names: TORCH_MODULE_ATTRIBUTES, what: "torch.nn.Module (or PreTrainedModel)" },
  trtllm: { names: TRTLLM_MODULE_ATTRIBUTES, what: "TensorRT-LLM's Module" },
};

/** Why `name` cannot be an attribute of a generated `family` class, or undefined when it can. Python keywords and
 *  other non-identifiers are allowed: emitters set and read them with setattr/getattr (isPlainAttribute), where they
 *  are ordinary attribute names. */
export function reservedAttribute(name: string, family: ClassFamily): string | undefined {
  if (/^__.*__$/.test(name)) return `'${name}' is a Python special (dunder) name`;
  const f = FAMILY_ATTRIBUTES[family];
  if (f.names.has(name)) return `'${name}' is an attribute of ${f.what}, which the generated class derives from`;
  return undefined;
}

const ASCII_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A name that can appear verbatim as an attribute in Python source: ASCII (Python NFKC-normalizes non-ASCII
 *  identifiers, which would change the name), not a keyword, and not `__private` (class bodies mangle those). */
export function isPlainAttribute(s: string): boolean {
  return ASCII_IDENTIFIER.test(s) && !PYTHON_KEYWORDS.has(s) && !(s.startsWith("__") && !s.endsWith("__"));
}

/** A valid identifier that is also safe as a variable: additionally not a builtin or soft keyword. */
export function isSafeIdentifier(s: string): boolean {
  return isPlainAttribute(s) && !PYTHON_BUILTINS.has(s) && !SOFT_KEYWORDS.includes(s) && !s.startsWith("__");
}

/** Any string -> an ASCII identifier shape (not yet checked against keywords or uniqueness). */
export function sanitizeIdentifier(candidate: string): string {
  let s = candidate.replace(/[^A-Za-z0-9_]+/g, "_");
  if (s === "") s = "_unnamed";
  if (/^[0-9]/.test(s)) s = `_${s}`;
  return s;
}

/** Hands out unique, safe identifiers. Reserved names (imports, parameters, checkpoint attribute names) are never
 *  returned. Like torch.fx, a candidate already ending in `_<n>` continues counting from n. */
export class Namespace {
  private readonly used = new Set<string>();

  constructor(reserved: Iterable<string> = []) {
    for (const r of reserved) this.used.add(r);
  }

  reserve(name: string): void {
    this.used.add(name);
  }

  has(name: string): boolean {
    return this.used.has(name);
  }

  create(candidate: string): string {
    // A leading "__" would be name-mangled inside classes; a lone "_" is a soft keyword.
    let name = sanitizeIdentifier(candidate).replace(/^_{2,}/, "_");
    if (name === "_") name = "_unnamed";
    const m = /^(.*)_(\d+)$/.exec(name);
    const base = m ? m[1]! : name;
    let n = m ? Number(m[2]) : 0;
    // Terminates: `${base}_${n}` is ASCII, never a keyword or builtin, and starts with "__" for no base left here.
    while (this.used.has(name) || !isSafeIdentifier(name)) name = `${base}_${++n}`;
    this.used.add(name);
    return name;
  }
}

/** CamelCase class-name stem from any string: "llama_from_primitives" -> "LlamaFromPrimitives", "gpt2" -> "Gpt2".
 *  Only ASCII letters and digits survive; an empty result becomes "Custom". Callers add a prefix, so a leading digit
 *  is harmless. */
export function pascalCase(s: string): string {
  const words = s.split(/[^A-Za-z0-9]+/).filter(Boolean);
  const out = words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join("");
  return out || "Custom";
}

const hex = (code: number, width: number) => code.toString(16).padStart(width, "0");

const STRING_ESCAPES: Record<string, string> = { "\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** A double-quoted Python str literal equal to `s` (UTF-16 code units; lone surrogates survive as \\uXXXX). Output is
 *  printable ASCII only, so it is safe in any source encoding and cannot hide bidirectional-override tricks. */
export function pyString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    const code = s.charCodeAt(i);
    const esc = STRING_ESCAPES[ch];
    if (esc) out += esc;
    else if (code >= 0x20 && code < 0x7f) out += ch;
    else if (code < 0x100) out += `\\x${hex(code, 2)}`;
    else {
      const cp = s.codePointAt(i)!;
      if (cp > 0xffff) {
        out += `\\U${hex(cp, 8)}`;
        i++;
      } else out += `\\u${hex(cp, 4)}`;
    }
  }
  return `${out}"`;
}

/** Text for a `#` comment: one line of printable ASCII (line breaks, control and non-ASCII characters are shown as
 *  \\uXXXX escapes), so user input can neither end the comment nor smuggle in invisible characters. */
export function pyCommentText(s: string): string {
  let out = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    out += cp >= 0x20 && cp < 0x7f ? ch : cp > 0xffff ? `\\U${hex(cp, 8)}` : `\\u${hex(cp, 4)}`;
  }
  return out;
}

/** A Python float literal that parses to exactly `n` (JS and Python both print the shortest round-trip form). */
export function pyFloat(n: number): string {
  if (Number.isNaN(n)) return 'float("nan")';
  if (!Number.isFinite(n)) return n > 0 ? 'float("inf")' : '-float("inf")';
  if (Object.is(n, -0)) return "-0.0";
  const s = String(n);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

export function pyInt(n: number): string {
  if (!Number.isSafeInteger(n)) throw new RangeError(`${n} is not an integer that Python source can hold exactly`);
  return String(n);
}

export type PyJson = null | boolean | number | string | readonly PyJson[] | { readonly [k: string]: PyJson };

/** A JSON value as a Python literal (dict/list/str/None/True/False; integers stay ints, other numbers floats). */
export function pyLiteral(v: PyJson): string {
  if (v === null) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number") return Number.isInteger(v) && Number.isSafeInteger(v) ? pyInt(v) : pyFloat(v);
  if (typeof v === "string") return pyString(v);
  if (Array.isArray(v)) return `[${v.map(pyLiteral).join(", ")}]`;
  return `{${Object.entries(v)
    .map(([k, x]) => `${pyString(k)}: ${pyLiteral(x)}`)
    .join(", ")}}`;
}
