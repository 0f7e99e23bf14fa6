// The runs table stays live over WatchExperiments: after the server's snapshot, every new or
// changed run arrives whole (status, latest metric values, params...) and replaces its row.
// No polling; a dropped stream resumes from its cursor, so nothing is missed.
import { useEffect, useRef } from "preact/hooks";
import { tracking } from "../api/client";
import { type RunRow, toRow } from "../api/runs";
import { applyChanges, type WatchOptions } from "../lib/changes";

/** Subscribes `onRuns` to changes of the experiments' runs (after the snapshot) while `ready`. */
export function useExperimentChanges(experimentIds: string[], onRuns: (runs: RunRow[]) => void, ready = true): void {
  const handler = useRef(onRuns);
  handler.current = onRuns;
  const ids = experimentIds.join(",");
  useEffect(() => {
    if (!ready || !ids) return;
    const ctl = new AbortController();
    void (async () => {
      let cursor = "";
      let live = false;
      for (let attempt = 0; !ctl.signal.aborted; attempt++) {
        try {
          for await (const msg of tracking.watchExperiments({ experimentIds: ids.split(","), cursor }, { signal: ctl.signal })) {
            attempt = 0;
            cursor = msg.cursor;
            // The snapshot repeats what the page loaded by its own search: only changes after it count.
            if (live && msg.runs.length) handler.current(msg.runs.map(toRow));
            if (msg.snapshotComplete) live = true;
          }
        } catch {
          if (ctl.signal.aborted) return;
        }
        await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** attempt)));
      }
    })();
    return () => ctl.abort();
  }, [ids, ready]);
}

export function useExperimentWatch(
  experimentIds: string[],
  setRows: (f: (rows: RunRow[]) => RunRow[]) => void,
  ready: boolean,
  opts: WatchOptions,
): void {
  const options = useRef(opts);
  options.current = opts;
  useExperimentChanges(experimentIds, (changed) => setRows((rows) => applyChanges(rows, changed, options.current)), ready);
}
