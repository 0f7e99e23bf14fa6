// Small shared pieces: error and loading notes, a status badge, key/value tables.
import type { ComponentChildren } from "preact";
import type { Problem } from "../api/errors";

export function ErrorNote({ problem, label }: { problem: Problem | undefined; label?: string }) {
  if (!problem) return null;
  return (
    <p role="alert" class="error">
      {label ? `${label}: ` : ""}
      {problem.message}
    </p>
  );
}

/** A page that could not load: its title and what the server said. */
export function PageError({ title, problem }: { title: preact.ComponentChildren; problem: Problem | undefined }) {
  return (
    <section class="page">
      <h1>{title}</h1>
      <ErrorNote problem={problem} />
    </section>
  );
}

/** A table's column headers. */
export function Head({ columns }: { columns: preact.ComponentChildren[] }) {
  return (
    <thead>
      <tr>
        {columns.map((c, i) => (
          <th scope="col" key={i}>
            {c}
          </th>
        ))}
      </tr>
    </thead>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p role="status" class="muted">
      Loading {what}…
    </p>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge status-${status.toLowerCase()}`}>{status}</span>;
}

export function KeyValues({ label, rows, empty }: { label: string; rows: [string, ComponentChildren][]; empty: string }) {
  if (rows.length === 0) return <p class="muted">{empty}</p>;
  return (
    <table class="kv" aria-label={label}>
      <tbody>
        {rows.map(([k, v]) => (
          <tr key={k}>
            <th scope="row">{k}</th>
            <td>{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A text that can be edited in place (description, name): shows a Save/Cancel pair while editing. */
import { useState } from "preact/hooks";

export function EditableText({
  label,
  value,
  multiline,
  onSave,
}: {
  label: string;
  value: string;
  multiline?: boolean;
  onSave: (next: string) => Promise<void>;
}) {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(value);
  const [error, setError] = useState("");
  if (!editing) {
    return (
      <div class="editable">
        {value ? <p class="prewrap">{value}</p> : <p class="muted">No {label.toLowerCase()}.</p>}
        <button
          type="button"
          class="ghost"
          onClick={() => {
            setDraft(value);
            setEditing(true);
          }}
        >
          Edit {label.toLowerCase()}
        </button>
      </div>
    );
  }
  const Field = multiline ? "textarea" : "input";
  return (
    <form
      class="editable stack"
      onSubmit={async (e) => {
        e.preventDefault();
        try {
          await onSave(draft);
          setEditing(false);
          setError("");
        } catch (err) {
          setError(err instanceof Error ? err.message : String(err));
        }
      }}
    >
      <label>
        {label}
        <Field value={draft} rows={multiline ? 5 : undefined} onInput={(e) => setDraft((e.currentTarget as HTMLInputElement).value)} />
      </label>
      <div class="row">
        <button type="submit">Save {label.toLowerCase()}</button>
        <button type="button" class="ghost" onClick={() => setEditing(false)}>
          Cancel
        </button>
      </div>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
    </form>
  );
}
