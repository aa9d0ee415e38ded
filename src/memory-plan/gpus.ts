// GPUs the memory planner knows, by the memory CUDA reports for them (cudaGetDeviceProperties totalGlobalMem,
// what torch.cuda.get_device_properties().total_memory prints; ECC and driver reservations already taken out), and
// the parser for `--gpu NAME|MEM`. Sources: h100-80gb and h200-141gb measured on NVIDIA H100 80GB HBM3 and H200
// (driver 580.159); a100-80gb and l40s-48gb from published torch device-property dumps (81920 MiB, 45589 MiB).
// Invariant: a plain MEM is bytes with a unit (GiB/GB/MiB/MB; GiB when no unit is given).

export interface Gpu {
  readonly name: string;
  readonly bytes: number;
}

const MIB = 2 ** 20;

export const GPUS: Readonly<Record<string, Gpu>> = {
  "h100-80gb": { name: "NVIDIA H100 80GB HBM3", bytes: 85_017_493_504 },
  "h200-141gb": { name: "NVIDIA H200", bytes: 150_109_880_320 },
  "a100-80gb": { name: "NVIDIA A100-SXM4-80GB", bytes: 81_920 * MIB },
  "l40s-48gb": { name: "NVIDIA L40S", bytes: 45_589 * MIB },
};

const UNITS: Readonly<Record<string, number>> = { "": 2 ** 30, gib: 2 ** 30, gb: 1e9, mib: MIB, mb: 1e6, tib: 2 ** 40, tb: 1e12 };

/** A known GPU name or a memory size; undefined when the text is neither. */
export function parseGpu(spec: string): Gpu | undefined {
  const known = GPUS[spec.toLowerCase()];
  if (known) return known;
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(spec.trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined || Number(m[1]) <= 0) return undefined;
  return { name: `${m[1]} ${m[2] || "GiB"} GPU`, bytes: Math.round(Number(m[1]) * unit) };
}
