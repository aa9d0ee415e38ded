// Module resolution hooks for the `kiln` command:
// - `import ... from "kiln"` in a user's model file (which may live anywhere on disk) resolves to this package;
// - TypeScript model files are ES modules even outside a `"type": "module"` package (Kiln's API is ESM-only).
let kilnUrl;
export function initialize(data) {
  kilnUrl = data.kiln;
}
export async function resolve(specifier, context, next) {
  const result = await next(specifier === "kiln" ? kilnUrl : specifier, context);
  if (/\.[cm]?ts$/.test(new URL(result.url).pathname) && !result.url.endsWith(".cts") && result.format === "commonjs") return { ...result, format: "module" };
  return result;
}
