// Hands live points from the page's WatchRun streams to the chart of each metric.
import type { Series } from "../lib/series";

export class LiveBus {
  private listeners = new Map<string, Set<(s: Series) => void>>();

  subscribe(key: string, fn: (s: Series) => void): () => void {
    const set = this.listeners.get(key) ?? new Set();
    set.add(fn);
    this.listeners.set(key, set);
    return () => set.delete(fn);
  }

  publish(series: Series[]): void {
    for (const s of series) for (const fn of this.listeners.get(s.key) ?? []) fn(s);
  }

  keys(): string[] {
    return [...this.listeners.keys()];
  }
}
