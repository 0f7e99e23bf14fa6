// New points of running runs, pushed by the server over WatchRun (a server stream): no polling.
// One stream per run; it ends when the component unmounts or the run list changes.
import { useEffect, useRef } from "preact/hooks";
import { tracking } from "../api/client";
import { fromColumns, type Series } from "../lib/series";

export function useWatchRuns(runIds: string[], keys: string[], onPoints: (series: Series[]) => void): void {
  const handler = useRef(onPoints);
  handler.current = onPoints;
  const ids = runIds.join(",");
  const keyList = keys.join("\u0000");
  useEffect(() => {
    if (!ids) return;
    const ctl = new AbortController();
    for (const runId of ids.split(",")) {
      void (async () => {
        // A dropped stream (server restart, network) is reopened after a pause while the page is open.
        for (let attempt = 0; !ctl.signal.aborted; attempt++) {
          try {
            for await (const msg of tracking.watchRun({ runId, keys: keys }, { signal: ctl.signal })) {
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
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ids, keyList]);
}
