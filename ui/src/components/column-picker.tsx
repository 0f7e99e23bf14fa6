// Which columns the runs table shows: attributes, params, metrics (latest value and the summaries
// min/max/first/count the server keeps) and tags, in a modal dialog with a search box.
import { useRef, useState } from "preact/hooks";
import type { KnownKeys } from "../lib/autocomplete";
import { ATTRIBUTE_COLUMNS, type ColumnId, columnKey, columnLabel, type Entity, GROUP_LABEL, SUMMARIES } from "../lib/columns";

export function ColumnPicker({ keys, columns, onChange }: { keys: KnownKeys; columns: ColumnId[]; onChange: (c: ColumnId[]) => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [q, setQ] = useState("");
  const on = new Set(columns.map(columnKey));
  const set = (c: ColumnId, want: boolean) => {
    const k = columnKey(c);
    onChange(want ? [...columns, c] : columns.filter((x) => columnKey(x) !== k));
  };
  const match = (key: string) => key.toLowerCase().includes(q.toLowerCase());
  const box = (c: ColumnId, label = columnLabel(c)) => (
    <label class="check" key={columnKey(c)}>
      <input type="checkbox" checked={on.has(columnKey(c))} onChange={(e) => set(c, e.currentTarget.checked)} />
      {label}
    </label>
  );
  const section = (entity: Entity, list: readonly string[]) => {
    const shown = list.filter(match);
    return (
      <fieldset key={entity}>
        <legend>
          {GROUP_LABEL[entity]} <span class="muted">({shown.length})</span>
        </legend>
        {shown.length === 0 && <p class="muted">None.</p>}
        {shown.slice(0, 300).map((key) =>
          entity === "metric" ? (
            <div class="metric-choice" key={key} role="group" aria-label={`Metric ${key}`}>
              {box({ entity, key }, key)}
              {SUMMARIES.map((s) => box({ entity, key, summary: s }, s))}
            </div>
          ) : (
            box({ entity, key }, entity === "attr" ? columnLabel({ entity, key }) : key)
          ),
        )}
      </fieldset>
    );
  };
  return (
    <>
      <button type="button" onClick={() => dialog.current?.showModal()}>
        Columns ({columns.length})
      </button>
      <dialog ref={dialog} class="picker" aria-label="Choose columns">
        <div class="row spread">
          <h2>Columns</h2>
          <button type="button" class="ghost" onClick={() => dialog.current?.close()}>
            Done
          </button>
        </div>
        <input type="search" aria-label="Search columns" placeholder="Search keys" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        <div class="picker-body">
          {section("attr", ATTRIBUTE_COLUMNS)}
          {section("param", keys.params)}
          {section("metric", keys.metrics)}
          {section("tag", keys.tags)}
        </div>
      </dialog>
    </>
  );
}
