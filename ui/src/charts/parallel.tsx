// Parallel coordinates (params against a metric, brushable on every axis) and a scatter of any two
// values: the two chart types uPlot lacks, drawn by ECharts, which loads only with this module.
import { ParallelChart as EParallel, ScatterChart as EScatter } from "echarts/charts";
import { GridComponent, ParallelComponent, TooltipComponent, VisualMapComponent } from "echarts/components";
import * as echarts from "echarts/core";
import { CanvasRenderer } from "echarts/renderers";
import { useEffect, useRef, useState } from "preact/hooks";
import type { RunRow } from "../api/runs";
import type { Dim } from "../pages/compare";
import { colorOf } from "./palette";

echarts.use([EParallel, EScatter, ParallelComponent, GridComponent, TooltipComponent, VisualMapComponent, CanvasRenderer]);

const css = (name: string) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

function useChart(option: echarts.EChartsCoreOption, deps: unknown[], onReady?: (c: echarts.ECharts) => void) {
  const el = useRef<HTMLDivElement>(null);
  const chart = useRef<echarts.ECharts>();
  useEffect(() => {
    const c = echarts.init(el.current!, undefined, { renderer: "canvas" });
    chart.current = c;
    onReady?.(c);
    const ro = new ResizeObserver(() => c.resize());
    ro.observe(el.current!);
    return () => {
      ro.disconnect();
      c.dispose();
    };
  }, []);
  useEffect(() => {
    chart.current?.setOption(option, true);
  }, deps);
  return el;
}

const axisStyle = () => ({
  nameTextStyle: { color: css("--text") },
  axisLine: { lineStyle: { color: css("--muted") } },
  axisLabel: { color: css("--muted") },
  splitLine: { lineStyle: { color: css("--grid") } },
});

export function ParallelChart({ runs, dims, target }: { runs: RunRow[]; dims: Dim[]; target?: Dim }) {
  const axes = target ? [...dims, target] : dims;
  const [inRange, setInRange] = useState<number[] | null>(null);
  const categorical = axes.map((d) => runs.some((r) => typeof d.value(r) === "string"));
  const data = runs.map((r) => axes.map((d, i) => (categorical[i] ? String(d.value(r) ?? "") : (d.value(r) ?? null))));
  const targetValues = target ? runs.map((r) => target.value(r)).filter((v): v is number => typeof v === "number") : [];
  const option = {
    backgroundColor: "transparent",
    animation: false,
    parallel: { left: 60, right: 110, top: 40, bottom: 30, parallelAxisDefault: { ...axisStyle(), nameLocation: "end", nameGap: 16 } },
    parallelAxis: axes.map((d, i) => ({
      dim: i,
      name: d.label,
      type: categorical[i] ? "category" : "value",
      ...(categorical[i] ? { data: [...new Set(data.map((row) => String(row[i])))].sort() } : { scale: true }),
    })),
    visualMap: targetValues.length
      ? {
          type: "continuous",
          dimension: axes.length - 1,
          min: Math.min(...targetValues),
          max: Math.max(...targetValues),
          right: 10,
          top: "middle",
          calculable: true,
          precision: 3,
          text: [target!.label, ""],
          textStyle: { color: css("--muted") },
          inRange: { color: ["#4e79a7", "#59a14f", "#edc948", "#e15759"] },
        }
      : undefined,
    series: [{ type: "parallel", lineStyle: { width: 1.5, opacity: 0.8 }, inactiveOpacity: 0.05, activeOpacity: 1, data }],
  };
  const el = useChart(option, [runs, dims, target], (c) => {
    c.on("axisareaselected", () => {
      // As in ECharts' own parallel example: the series model knows which lines the brushes keep.
      const model = (c as unknown as { getModel(): { getSeries(): { getRawIndicesByActiveState(s: string): number[] }[] } }).getModel();
      const series = model.getSeries()[0];
      setInRange(series.getRawIndicesByActiveState("active"));
    });
  });
  if (dims.length === 0) return <p class="muted">These runs have no params.</p>;
  return (
    <div>
      <div ref={el} class="echart" role="img" aria-label={`Parallel coordinates of ${axes.map((d) => d.label).join(", ")}`} />
      <p class="muted" role="status">
        Drag along an axis to brush a range.{" "}
        {inRange && `${inRange.length} of ${runs.length} runs in range: ${inRange.map((i) => runs[i].name || runs[i].id).join(", ")}`}
      </p>
    </div>
  );
}

export function ScatterChart({ runs, x, y }: { runs: RunRow[]; x: Dim; y: Dim }) {
  const points = runs
    .map((r, i) => ({ r, i, vx: x.value(r), vy: y.value(r) }))
    .filter((p) => typeof p.vx === "number" && typeof p.vy === "number");
  const option = {
    backgroundColor: "transparent",
    animation: false,
    grid: { left: 70, right: 30, top: 30, bottom: 50 },
    tooltip: { trigger: "item", // Run names are user data: escaped, as the tooltip is HTML.
      formatter: (p: { data: { name: string; value: number[] } }) =>
        [p.data.name, `${x.label}: ${p.data.value[0]}`, `${y.label}: ${p.data.value[1]}`].map((t) => echarts.format.encodeHTML(t)).join("<br/>"),
    },
    xAxis: { type: "value", name: x.label, nameLocation: "middle", nameGap: 30, scale: true, ...axisStyle() },
    yAxis: { type: "value", name: y.label, nameLocation: "middle", nameGap: 50, scale: true, ...axisStyle() },
    series: [
      {
        type: "scatter",
        symbolSize: 10,
        data: points.map((p) => ({ name: p.r.name || p.r.id, value: [p.vx, p.vy], itemStyle: { color: colorOf(p.i) } })),
      },
    ],
  };
  const el = useChart(option, [runs, x, y]);
  return (
    <div>
      <div ref={el} class="echart" role="img" aria-label={`Scatter of ${y.label} against ${x.label}`} />
      {points.length < runs.length && <p class="muted">{runs.length - points.length} runs have no numeric value for one of the axes.</p>}
    </div>
  );
}
