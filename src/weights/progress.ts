// A terminal progress bar for checkpoint conversion (bytes written, percent, rate, current tensor), drawn with
// cli-progress on stderr. Invariant: when the stream is not a TTY (pipes, CI logs) nothing is ever written and
// no timer is started, so redirected output stays clean.

import cliProgress from "cli-progress";

export interface ConversionProgress {
  /** Pass as writeCheckpointFiles' onProgress. */
  readonly onProgress: (bytesDone: number, bytesTotal: number, tensor: string) => void;
  /** Draws the final state and releases the terminal; safe to call more than once, or never started. */
  readonly stop: () => void;
}

const UNITS = ["B", "KB", "MB", "GB", "TB"] as const;

/** 1536 -> "1.5 KB", 3.2e9 -> "3.20 GB" (decimal units, like disk sizes). */
export function formatBytes(n: number): string {
  let u = 0;
  while (n >= 1000 && u < UNITS.length - 1) {
    n /= 1000;
    u++;
  }
  return u === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 2 : 1)} ${UNITS[u]}`;
}

export function conversionProgress(stream: NodeJS.WriteStream = process.stderr): ConversionProgress {
  if (!stream.isTTY) return { onProgress: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { stream, format: "{bar} {percentage}% | {done} / {size} | {tensor}", hideCursor: true, barsize: 30, fps: 10 },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    onProgress: (done, total, tensor) => {
      const payload = { done: formatBytes(done), size: formatBytes(total), tensor };
      if (!started) {
        started = true;
        bar.start(total, done, payload);
      } else bar.update(done, payload);
    },
    stop: () => {
      if (started) bar.stop();
      started = false;
    },
  };
}
