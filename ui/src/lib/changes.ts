// How a live table takes changed runs from the experiment watch.
import type { RunRow } from "../api/runs"; // type only: no client at import

export interface WatchOptions {
  /** Add runs the page has not loaded at the top (only right for the default newest-first view). */
  prependNew: boolean;
  /** Keep deleted runs (shown as deleted) instead of dropping their rows. */
  keepDeleted: boolean;
}

/** Applies changed runs to the loaded rows: replace by id, drop deletions, maybe add new ones. */
export function applyChanges(rows: RunRow[], changed: RunRow[], opts: WatchOptions): RunRow[] {
  const byId = new Map(changed.map((r) => [r.id, r]));
  const out: RunRow[] = [];
  for (const r of rows) {
    const next = byId.get(r.id);
    byId.delete(r.id);
    if (!next) out.push(r);
    else if (!next.deleted || opts.keepDeleted) out.push(next);
  }
  if (!opts.prependNew) return out;
  const added = [...byId.values()].filter((r) => !r.deleted).sort((a, b) => b.start - a.start);
  return [...added, ...out];
}
