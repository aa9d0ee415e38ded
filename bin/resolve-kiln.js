// Module resolution hooks for the `kiln` command:
// - `import ... from "kiln"` in a user's model file (which may live anywhere on disk) resolves to this package;
// - TypeScript model files are ES modules even outside a `"type": "module"` package (Kiln's API is ESM-only).
let kilnUrl;
export function initialize(data) {
  kilnUrl = data.kiln;
}
// tsx marks a file it would load as CommonJS with a query (`?tsx-commonjs-...`, also %3F-encoded into the path, as
// for a sibling .ts that a model file imports); such a file is loaded from its plain URL as an ES module instead, so
// its own `import ... from "kiln"` resolves here too (a CommonJS require() would not see this hook).
export async function resolve(specifier, context, next) {
  const result = await next(specifier === "kiln" ? kilnUrl : specifier, context);
  if (result.format !== "commonjs" || !result.url.startsWith("file:")) return result;
  const plain = new URL(result.url.replace(/%3F.*$/i, ""));
  plain.search = "";
  if (/\.m?ts$/.test(plain.pathname)) return { ...result, url: plain.href, format: "module" };
  return result;
}
