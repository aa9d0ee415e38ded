// Printed shell commands: the one place that turns arguments into text a user pastes into a POSIX shell (sh, bash,
// zsh, dash). Every argument is quoted unless it is made only of characters no shell treats specially, so a path
// holding `$()`, backticks, quotes, spaces, globs, `;` or newlines stays one literal word and runs nothing.
// Single quotes are used because nothing inside them is special; a `'` is written as '"'"'.

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** POSIX-shell quoting of one word. */
export function shellQuote(word: string): string {
  return SAFE_WORD.test(word) ? word : `'${word.replaceAll("'", `'"'"'`)}'`;
}

/** A command line from its arguments, each quoted. */
export function shellCommand(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}

/** `NAME=value` for a command prefix, the value quoted (NAME must be a plain variable name). */
export function shellAssign(name: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`shellAssign: '${name}' is not a variable name`);
  return `${name}=${shellQuote(value)}`;
}

/** `NAME=value` that keeps the variable's current value after a colon: `NAME=value${NAME:+:$NAME}`. */
export function shellPrependPath(name: string, value: string): string {
  return `${shellAssign(name, value)}\${${name}:+:$${name}}`;
}
