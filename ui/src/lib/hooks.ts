// Small hooks: an async load tied to its inputs (stale answers dropped), and URL query state.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { useLocation } from "preact-iso";
import { type Problem, problemOf } from "../api/errors";

export interface Loaded<T> {
  data: T | undefined;
  error: Problem | undefined;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` when `deps` change; an older call's answer never overwrites a newer one's. */
export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: Problem; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const ctl = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    load(ctl.signal).then(
      (data) => ctl.signal.aborted || setState({ data, loading: false }),
      (err) => ctl.signal.aborted || setState({ error: problemOf(err), loading: false }),
    );
    return () => ctl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

/** The current query string, and a setter that replaces it (no new history entry by default). */
export function useQueryString(): [string, (search: string, push?: boolean) => void] {
  const { url, path, route } = useLocation();
  const search = url.includes("?") ? url.slice(url.indexOf("?")) : "";
  const set = useCallback(
    (next: string, push = false) => {
      if (next !== search) route(path + next, !push);
    },
    [path, search, route],
  );
  return [search, set];
}

/** Calls `fn` at most once per `ms` with the latest arguments. */
export function useDebounced<A extends unknown[]>(fn: (...args: A) => void, ms: number): (...args: A) => void {
  const timer = useRef<ReturnType<typeof setTimeout>>();
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(() => () => clearTimeout(timer.current), []);
  return useCallback(
    (...args: A) => {
      clearTimeout(timer.current);
      timer.current = setTimeout(() => latest.current(...args), ms);
    },
    [ms],
  );
}
