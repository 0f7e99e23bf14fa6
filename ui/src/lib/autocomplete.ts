// Key completion for the runs filter box (MLflow's grammar): `metrics.`, `params.`, `tags.`,
// `attributes.` and the keys the readable runs actually have. Pure: the caller passes the keys.
import { ATTRIBUTES, grammarKey, SUMMARIES } from "./columns";

export interface KnownKeys {
  metrics: string[];
  params: string[];
  tags: string[];
}

export interface Completion {
  /** What the list shows. */
  label: string;
  /** What replaces text[from, to). */
  insert: string;
}

export interface Completions {
  from: number;
  to: number;
  items: Completion[];
}

const ENTITIES: [string, keyof KnownKeys | "attributes"][] = [
  ["metrics", "metrics"],
  ["params", "params"],
  ["tags", "tags"],
  ["attributes", "attributes"],
];
const ALIASES: Record<string, keyof KnownKeys | "attributes"> = {
  metric: "metrics",
  metrics: "metrics",
  param: "params",
  params: "params",
  parameter: "params",
  parameters: "params",
  tag: "tags",
  tags: "tags",
  attribute: "attributes",
  attributes: "attributes",
  attr: "attributes",
};
const IDENT = /[A-Za-z0-9_./-]/;
const LIMIT = 12;

/** Whether `pos` is inside a quoted string or backticked name (then nothing is completed). */
function inQuotes(text: string, pos: number): boolean {
  let quote = "";
  for (let i = 0; i < pos; i++) {
    const ch = text[i];
    if (quote) {
      if (ch === quote) quote = text[i + 1] === quote ? (i++, quote) : "";
    } else if (ch === "'" || ch === '"' || ch === "`") quote = ch;
  }
  return quote !== "";
}

/** Whether the word before `start` is a comparison operator or value (so this is not a key). */
function afterOperator(text: string, start: number): boolean {
  const before = text.slice(0, start).trimEnd();
  return /(?:[=<>!]|\bLIKE|\bILIKE|\bIN)$/i.test(before);
}

export function complete(text: string, cursor: number, keys: KnownKeys): Completions | null {
  if (inQuotes(text, cursor)) return null;
  let start = cursor;
  while (start > 0 && IDENT.test(text[start - 1])) start--;
  let end = cursor;
  while (end < text.length && IDENT.test(text[end])) end++;
  const word = text.slice(start, cursor);
  if (afterOperator(text, start) || /^[-+]?\d/.test(word)) return null;
  const dot = word.indexOf(".");
  const items: Completion[] = [];
  if (dot < 0) {
    const lower = word.toLowerCase();
    for (const [name] of ENTITIES) {
      if (name.startsWith(lower)) items.push({ label: `${name}.`, insert: `${name}.` });
    }
    if (word && "and".startsWith(lower) && text.slice(0, start).trim()) items.push({ label: "AND", insert: "AND " });
  } else {
    const entity = ALIASES[word.slice(0, dot).toLowerCase()];
    if (!entity) return null;
    const prefix = word.slice(dot + 1);
    const pool: string[] = entity === "attributes" ? [...ATTRIBUTES] : keys[entity];
    const head = word.slice(0, dot + 1);
    for (const key of pool) {
      if (!key.startsWith(prefix)) continue;
      items.push({ label: `${head}${key}`, insert: `${head}${grammarKey(key)}` });
      if (entity === "metrics" && key === prefix) {
        for (const s of SUMMARIES) items.push({ label: `${head}${key}.${s}`, insert: `${head}${grammarKey(key)}.${s}` });
      }
    }
  }
  if (items.length === 0) return null;
  return { from: start, to: end, items: items.slice(0, LIMIT) };
}

/** The keys of a list of runs, deduplicated and sorted, for completion and the column picker. */
export function keysOf(
  runs: { metrics: { key: string }[]; params: { key: string }[]; tags: { key: string }[] }[],
): KnownKeys {
  const m = new Set<string>();
  const p = new Set<string>();
  const t = new Set<string>();
  for (const r of runs) {
    for (const x of r.metrics) m.add(x.key);
    for (const x of r.params) p.add(x.key);
    for (const x of r.tags) if (!x.key.startsWith("tracklane.") && !x.key.startsWith("mlflow.")) t.add(x.key);
  }
  const sorted = (s: Set<string>) => [...s].sort();
  return { metrics: sorted(m), params: sorted(p), tags: sorted(t) };
}
