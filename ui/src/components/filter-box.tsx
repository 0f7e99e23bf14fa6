// The runs filter: MLflow's grammar, key completion (a listbox under the box, arrow keys and Enter
// or Tab to take one), and the server parser's error drawn under the column it names.
import { useMemo, useRef, useState } from "preact/hooks";
import type { Problem } from "../api/errors";
import { type Completions, complete, type KnownKeys } from "../lib/autocomplete";

export function FilterBox({
  value,
  keys,
  error,
  onApply,
}: {
  value: string;
  keys: KnownKeys;
  error?: Problem;
  onApply: (filter: string) => void;
}) {
  const [text, setText] = useState(value);
  const [cursor, setCursor] = useState(value.length);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);
  /** Enter takes a completion only once the arrow keys moved into the list; otherwise it applies. */
  const [navigated, setNavigated] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const [shownFor, setShownFor] = useState(value);
  if (shownFor !== value) {
    // The URL changed under us (back button, a link): show its filter.
    setShownFor(value);
    setText(value);
  }
  const completions: Completions | null = useMemo(() => (open ? complete(text, cursor, keys) : null), [open, text, cursor, keys]);
  const take = (i: number) => {
    if (!completions) return;
    const item = completions.items[i];
    const next = text.slice(0, completions.from) + item.insert + text.slice(completions.to);
    const at = completions.from + item.insert.length;
    setText(next);
    setCursor(at);
    setActive(0);
    setNavigated(false);
    requestAnimationFrame(() => input.current?.setSelectionRange(at, at));
  };
  const listId = "filter-completions";
  return (
    <div class="filter-box">
      <form
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setOpen(false);
          onApply(text.trim());
        }}
      >
        <input
          ref={input}
          type="search"
          role="combobox"
          aria-label="Filter runs"
          aria-autocomplete="list"
          aria-expanded={!!completions}
          aria-controls={listId}
          aria-activedescendant={completions && navigated ? `${listId}-${active}` : undefined}
          aria-invalid={!!error}
          aria-describedby={error ? "filter-error" : undefined}
          spellcheck={false}
          placeholder={"metrics.loss < 0.1 and params.lr = '0.01'"}
          value={text}
          onInput={(e) => {
            setText(e.currentTarget.value);
            setCursor(e.currentTarget.selectionStart ?? e.currentTarget.value.length);
            setOpen(true);
            setActive(0);
            setNavigated(false);
          }}
          onKeyDown={(e) => {
            if (e.key === "Escape") {
              e.preventDefault(); // a search box would clear itself: Escape only closes the list
              setOpen(false);
              return;
            }
            if (!completions) return;
            if (e.key === "ArrowDown" || e.key === "ArrowUp") {
              e.preventDefault();
              const n = completions.items.length;
              setNavigated(true);
              setActive((a) => (navigated ? a + (e.key === "ArrowDown" ? 1 : n - 1) : e.key === "ArrowDown" ? 0 : n - 1) % n);
            } else if (e.key === "Tab" || (e.key === "Enter" && navigated)) {
              e.preventDefault();
              take(active);
            }
          }}
          onKeyUp={(e) => setCursor(e.currentTarget.selectionStart ?? 0)}
          onClick={(e) => setCursor(e.currentTarget.selectionStart ?? 0)}
          onBlur={() => setTimeout(() => setOpen(false), 150)}
        />
        <button type="submit">Apply filter</button>
      </form>
      {completions && (
        <ul id={listId} role="listbox" aria-label="Filter keys" class="completions">
          {completions.items.map((item, i) => (
            <li
              key={item.label}
              id={`${listId}-${i}`}
              role="option"
              aria-selected={i === active && navigated}
              onMouseDown={(e) => {
                e.preventDefault();
                take(i);
              }}
            >
              {item.label}
            </li>
          ))}
        </ul>
      )}
      {error && (
        <div id="filter-error" role="alert" class="filter-error">
          {error.column !== undefined && (
            <pre class="caret" aria-hidden="true">
              {value}
              {"\n"}
              {" ".repeat(Math.max(0, error.column - 1))}^
            </pre>
          )}
          <p class="error">{error.message}</p>
        </div>
      )}
    </div>
  );
}
