// Public surface of the IR layer.
export * from "./attrs.ts";
export * from "./dtype.ts";
export * from "./graph.ts";
export * from "./ops.ts";
export * from "./print.ts";
export * from "./serialize.ts";
export * from "./shape.ts";
export * from "./verify.ts";
