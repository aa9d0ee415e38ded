// The error shape rules throw. Its own file so that op-table rows kept outside ops.ts (ops-routing.ts) can throw it
// without an import cycle; ops.ts re-exports it, and callers keep importing it from there.

export class ShapeError extends Error {}
