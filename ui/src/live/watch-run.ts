// New points of running runs on the charts, pushed by the server: no polling.
// A browser holds at most six HTTP/1.1 connections per origin and each stream keeps one, so up to
// two running runs get their own WatchRun stream; beyond that one WatchExperiments stream says
// which runs changed and their new points are read from the last step shown (BatchGetMetricHistory).
import { useEffect, useRef } from "preact/hooks";
import { tracking } from "../api/client";
import type { RunRow } from "../api/runs";
import { fetchHistory } from "../charts/history";
import { fromColumns, type Series } from "../lib/series";
import { useExperimentChanges } from "./experiment-watch";

const MAX_RUN_STREAMS = 2;

function useWatchRunStreams(runIds: string[], onPoints: (series: Series[]) => void): void {
  const handler = useRef(onPoints);
  handler.current = onPoints;
  const ids = runIds.join(",");
  useEffect(() => {
    if (!ids) return;
    const ctl = new AbortController();
    for (const runId of ids.split(",")) {
      void (async () => {
        // Reopened after a pause when dropped (server restart, network) while the page is open.
        for (let attempt = 0; !ctl.signal.aborted; attempt++) {
          try {
            for await (const msg of tracking.watchRun({ runId }, { signal: ctl.signal })) {
              attempt = 0;
              handler.current(msg.series.map((s) => fromColumns(s.runId, s.key, s.steps, s.values, s.timestampsMs)));
            }
          } catch {
            if (ctl.signal.aborted) return;
          }
          await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** attempt)));
        }
      })();
    }
    return () => ctl.abort();
  }, [ids]);
}

/** Calls `onPoints` with the new points of the running runs among `runs`. */
export function useLivePoints(runs: RunRow[], onPoints: (series: Series[]) => void): void {
  const running = runs.filter((r) => r.status === "RUNNING");
  const streamed = running.length <= MAX_RUN_STREAMS ? running.map((r) => r.id) : [];
  useWatchRunStreams(streamed, onPoints);
  // Many running runs: the latest step of each key tells what is new.
  const known = useRef(new Map<string, number>());
  useEffect(() => {
    for (const r of runs) for (const [k, m] of r.metrics) known.current.set(`${r.id}\u0000${k}`, m.step);
  }, [runs]);
  const mine = new Set(running.map((r) => r.id));
  const experiments = streamed.length || running.length === 0 ? [] : [...new Set(running.map((r) => r.experimentId))];
  useExperimentChanges(experiments, (changed) => {
    for (const run of changed) {
      if (!mine.has(run.id)) continue;
      const stale: [string, number][] = [];
      for (const [k, m] of run.metrics) {
        const id = `${run.id}\u0000${k}`;
        const last = known.current.get(id) ?? -1;
        if (m.step > last) stale.push([k, last]);
        known.current.set(id, Math.max(last, m.step));
      }
      if (stale.length === 0) continue;
      const from = Math.min(...stale.map(([, s]) => s)) + 1;
      void fetchHistory([run.id], stale.map(([k]) => k), 0, { start: from, end: Number.MAX_SAFE_INTEGER }).then(onPoints, () => undefined);
    }
  });
}
