// Metric history for charts: the server downsamples each series to the chart's width (first, last,
// min and max per bucket), for the whole run or for the range in view after a zoom.
import { tracking } from "../api/client";
import { fromColumns, type Series } from "../lib/series";

/** Points per series to ask for: four per pixel column for a few runs, two when many share a chart. */
export function pointsFor(width: number, runs: number): number {
  return Math.max(64, Math.round(width) * (runs > 10 ? 2 : 4));
}

export async function fetchHistory(
  runIds: string[],
  keys: string[],
  maxPoints: number,
  range?: { start: number; end: number },
  signal?: AbortSignal,
): Promise<Series[]> {
  const out = new Map<string, Series[]>();
  let pageToken = "";
  do {
    const res = await tracking.batchGetMetricHistory(
      {
        runIds,
        keys,
        maxPoints,
        pageSize: 1_000_000,
        pageToken,
        ...(range ? { startStep: BigInt(Math.floor(range.start)), endStep: BigInt(Math.ceil(range.end)) } : {}),
      },
      { signal },
    );
    for (const s of res.series) {
      const id = `${s.runId}\u0000${s.key}`;
      const part = fromColumns(s.runId, s.key, s.steps, s.values, s.timestampsMs);
      out.set(id, [...(out.get(id) ?? []), part]);
    }
    pageToken = res.nextPageToken;
  } while (pageToken);
  return [...out.values()].map((parts) => (parts.length === 1 ? parts[0] : joinParts(parts)));
}

function joinParts(parts: Series[]): Series {
  const cat = (pick: (s: Series) => Float64Array) => {
    const out = new Float64Array(parts.reduce((n, p) => n + pick(p).length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(pick(p), at);
      at += pick(p).length;
    }
    return out;
  };
  return { runId: parts[0].runId, key: parts[0].key, steps: cat((s) => s.steps), values: cat((s) => s.values), times: cat((s) => s.times) };
}
