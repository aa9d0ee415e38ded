// Type-checks one model file with ts-morph in its own process (spawned by load-model-file.ts), so the TypeScript
// compiler's memory (a few hundred MB for Kiln's API) is returned to the system before a command goes on to
// trace, run or convert. Plain JavaScript: it starts without a TypeScript loader.
// Usage: node typecheck-worker.mjs MODEL_ABS_PATH KILN_INDEX_ABS_PATH TYPE_ROOTS_DIR
// Prints one JSON object: { diagnostics: [{ file, line, col, message }] (absolute file paths),
//                           files: [every source file of the program outside node_modules, absolute] }.

import { createRequire } from "node:module";

const [model, kilnIndex, typeRoots] = process.argv.slice(2);
const { Project, ts } = createRequire(import.meta.url)("ts-morph");
const project = new Project({
  compilerOptions: {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    allowImportingTsExtensions: true,
    noEmit: true,
    strict: true,
    skipLibCheck: true,
    types: ["node"],
    typeRoots: [typeRoots],
    paths: { kiln: [kilnIndex] },
  },
});
const file = project.addSourceFileAtPath(model);
project.resolveSourceFileDependencies();
const diagnostics = file.getPreEmitDiagnostics().map((d) => {
  const f = d.getSourceFile();
  const start = d.getStart() ?? 0;
  const { line, column } = f ? f.getLineAndColumnAtPos(start) : { line: 0, column: 0 };
  const text = d.getMessageText();
  const message = typeof text === "string" ? text : text.getMessageText();
  return { file: f ? f.getFilePath() : model, line, col: column, message };
});
const files = project
  .getSourceFiles()
  .map((f) => f.getFilePath())
  .filter((p) => !p.includes("/node_modules/"));
process.stdout.write(JSON.stringify({ diagnostics, files }));
