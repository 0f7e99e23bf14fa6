// A chart per metric key for a set of runs (up to 100 overlaid), with the shared x-axis, log-scale
// and smoothing controls; running runs stream new points into every chart.
import { useMemo, useState } from "preact/hooks";
import type { RunRow } from "../api/runs";
import { useLivePoints } from "../live/watch-run";
import type { ChartOptions, XAxis } from "../lib/url";
import { LiveBus } from "./live-bus";
import { MetricChart } from "./metric-chart";

export function ChartControls({ chart, onChart }: { chart: ChartOptions; onChart: (c: ChartOptions) => void }) {
  return (
    <div class="toolbar" role="group" aria-label="Chart options">
      <label>
        X axis
        <select value={chart.x} onChange={(e) => onChart({ ...chart, x: e.currentTarget.value as XAxis })}>
          <option value="step">Step</option>
          <option value="time">Wall time</option>
          <option value="relative">Relative time</option>
        </select>
      </label>
      <label class="check">
        <input type="checkbox" checked={chart.logX} onChange={(e) => onChart({ ...chart, logX: e.currentTarget.checked })} />
        Log X
      </label>
      <label class="check">
        <input type="checkbox" checked={chart.logY} onChange={(e) => onChart({ ...chart, logY: e.currentTarget.checked })} />
        Log Y
      </label>
      <label>
        Smoothing
        <input
          type="range"
          min={0}
          max={0.99}
          step={0.01}
          value={chart.smoothing}
          onInput={(e) => onChart({ ...chart, smoothing: Number(e.currentTarget.value) })}
        />
        <output>{chart.smoothing.toFixed(2)}</output>
      </label>
    </div>
  );
}

export function MetricCharts({ runs, chart, onChart, keys }: { runs: RunRow[]; chart: ChartOptions; onChart: (c: ChartOptions) => void; keys?: string[] }) {
  const [q, setQ] = useState("");
  const allKeys = useMemo(() => keys ?? [...new Set(runs.flatMap((r) => [...r.metrics.keys()]))].sort(), [runs, keys]);
  const shown = allKeys.filter((k) => k.toLowerCase().includes(q.toLowerCase()));
  const model = shown.filter((k) => !k.startsWith("system/"));
  const system = shown.filter((k) => k.startsWith("system/"));
  const bus = useMemo(() => new LiveBus(), []);
  const running = runs.filter((r) => r.status === "RUNNING").map((r) => r.id);
  useLivePoints(runs, (series) => bus.publish(series));
  const chartRuns = useMemo(() => runs.map((r) => ({ id: r.id, name: r.name, start: r.start })), [runs]);
  return (
    <div class="charts">
      <div class="row spread">
        <ChartControls chart={chart} onChart={onChart} />
        <input type="search" aria-label="Search metrics" placeholder="Search metrics" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
      </div>
      {running.length > 0 && (
        <p class="muted live-note" role="status">
          <span class="dot" aria-hidden="true" /> Live: {running.length} running {running.length === 1 ? "run" : "runs"}
        </p>
      )}
      {allKeys.length === 0 && <p class="muted">These runs have no metrics.</p>}
      <div class="chart-grid">
        {model.map((k) => (
          <MetricChart key={k} metric={k} runs={chartRuns} chart={chart} live={bus} />
        ))}
      </div>
      {system.length > 0 && (
        <>
          <h3>System metrics</h3>
          <div class="chart-grid">
            {system.map((k) => (
              <MetricChart key={k} metric={k} runs={chartRuns} chart={chart} live={bus} />
            ))}
          </div>
        </>
      )}
    </div>
  );
}
