// PNG and CSV downloads of a chart: the canvas on the page's background, and the points it holds.
import type { Series } from "../lib/series";

export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function chartPng(canvas: HTMLCanvasElement, background: string): Promise<Blob> {
  const out = document.createElement("canvas");
  out.width = canvas.width;
  out.height = canvas.height;
  const ctx = out.getContext("2d")!;
  ctx.fillStyle = background;
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.drawImage(canvas, 0, 0);
  return new Promise((resolve, reject) => out.toBlob((b) => (b ? resolve(b) : reject(new Error("no PNG"))), "image/png"));
}

const quote = (s: string) => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);

/** One line per point: run, run_id, key, step, timestamp_ms, value. */
export function seriesCsv(series: Series[], names: Map<string, string>, steps?: { start: number; end: number }): string {
  const lines = ["run,run_id,key,step,timestamp_ms,value"];
  for (const s of series) {
    const name = quote(names.get(s.runId) ?? "");
    for (let i = 0; i < s.steps.length; i++) {
      if (steps && (s.steps[i] < steps.start || s.steps[i] > steps.end)) continue;
      lines.push(`${name},${s.runId},${quote(s.key)},${s.steps[i]},${s.times[i]},${s.values[i]}`);
    }
  }
  return lines.join("\n") + "\n";
}
