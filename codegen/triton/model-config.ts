// Triton ModelConfig schema: loads model_config.proto with protobufjs at run time
// and gives the TypeScript shape of the plain objects Kiln builds.
// Invariants: field names are the proto's own snake_case names (keepCase), enums
// are their value names, int64 fields are safe JS integers — the same shape
// parseTextFormat returns, so built and parsed configs compare with deepEqual.

import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import type { Type } from "protobufjs";

export type DataType =
  | "TYPE_BOOL"
  | "TYPE_UINT8"
  | "TYPE_UINT16"
  | "TYPE_UINT32"
  | "TYPE_UINT64"
  | "TYPE_INT8"
  | "TYPE_INT16"
  | "TYPE_INT32"
  | "TYPE_INT64"
  | "TYPE_FP16"
  | "TYPE_FP32"
  | "TYPE_FP64"
  | "TYPE_STRING"
  | "TYPE_BF16";

export interface ModelTensorReshape {
  shape?: number[];
}

export interface ModelInput {
  name: string;
  data_type: DataType;
  dims: number[];
  reshape?: ModelTensorReshape;
  allow_ragged_batch?: boolean;
  optional?: boolean;
}

export interface ModelOutput {
  name: string;
  data_type: DataType;
  dims: number[];
  reshape?: ModelTensorReshape;
}

export interface ModelInstanceGroup {
  name?: string;
  count?: number;
  gpus?: number[];
  kind?: "KIND_AUTO" | "KIND_GPU" | "KIND_CPU" | "KIND_MODEL";
}

export interface ModelQueuePolicy {
  timeout_action?: "REJECT" | "DELAY";
  default_timeout_microseconds?: number;
  allow_timeout_override?: boolean;
  max_queue_size?: number;
}

export interface ModelDynamicBatching {
  preferred_batch_size?: number[];
  max_queue_delay_microseconds?: number;
  preserve_ordering?: boolean;
  default_queue_policy?: ModelQueuePolicy;
}

export interface EnsembleStep {
  model_name: string;
  model_version: number;
  input_map: Record<string, string>;
  output_map: Record<string, string>;
}

export interface ModelParameter {
  string_value: string;
}

export interface ModelConfig {
  name: string;
  platform?: string;
  backend?: string;
  max_batch_size: number;
  input: ModelInput[];
  output: ModelOutput[];
  instance_group?: ModelInstanceGroup[];
  dynamic_batching?: ModelDynamicBatching;
  ensemble_scheduling?: { step: EnsembleStep[] };
  parameters?: Record<string, ModelParameter>;
  model_transaction_policy?: { decoupled: boolean };
}

export const MODEL_CONFIG_PROTO = fileURLToPath(new URL("./model_config.proto", import.meta.url));

let cached: Type | undefined;

/** The reflected `inference.ModelConfig` type (loaded once, all references resolved). */
export function modelConfigType(): Type {
  if (cached) return cached;
  const root = new protobuf.Root().loadSync(MODEL_CONFIG_PROTO, { keepCase: true });
  root.resolveAll();
  cached = root.lookupType("inference.ModelConfig");
  return cached;
}
