// Experiments: search, create, rename, delete and restore; pick several to see their runs in one table.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { useState } from "preact/hooks";
import { useLocation } from "preact-iso";
import { tracking } from "../api/client";
import { problemOf, type Problem } from "../api/errors";
import { ErrorNote, Loading } from "../components/common";
import { LifecycleStage, ViewType } from "../gen/tracklane/v1/common_pb";
import type { Experiment } from "../gen/tracklane/v1/tracking_pb";
import { formatTime } from "../lib/format";
import { useAsync, useQueryString } from "../lib/hooks";

/** The SearchExperiments filter for what was typed: a name substring, or the grammar itself. */
export function experimentFilter(text: string): string {
  const q = text.trim();
  if (!q) return "";
  if (/[=<>]|\bLIKE\b/i.test(q)) return q;
  return `name ILIKE '%${q.replaceAll("'", "''")}%'`;
}

async function allExperiments(filter: string, deleted: boolean, signal: AbortSignal): Promise<Experiment[]> {
  const out: Experiment[] = [];
  let pageToken = "";
  do {
    const res = await tracking.searchExperiments(
      { filter, orderBy: ["name ASC"], viewType: deleted ? ViewType.DELETED_ONLY : ViewType.ACTIVE_ONLY, pageSize: 1000, pageToken },
      { signal },
    );
    out.push(...res.experiments);
    pageToken = res.nextPageToken;
  } while (pageToken && out.length < 10000);
  return out;
}

function CreateExperiment({ onCreated }: { onCreated: (e: Experiment) => void }) {
  const [name, setName] = useState("");
  const [error, setError] = useState<Problem>();
  return (
    <form
      class="row"
      aria-label="Create experiment"
      onSubmit={async (e) => {
        e.preventDefault();
        try {
          const res = await tracking.createExperiment({ name: name.trim() });
          setName("");
          setError(undefined);
          onCreated(res.experiment!);
        } catch (err) {
          setError(problemOf(err));
        }
      }}
    >
      <label>
        New experiment
        <input value={name} placeholder="name" onInput={(e) => setName(e.currentTarget.value)} required />
      </label>
      <button type="submit" disabled={!name.trim()}>
        Create
      </button>
      <ErrorNote problem={error} label="Could not create" />
    </form>
  );
}

function ExperimentRow({
  exp,
  checked,
  onCheck,
  onChanged,
}: {
  exp: Experiment;
  checked: boolean;
  onCheck: (on: boolean) => void;
  onChanged: () => void;
}) {
  const [renaming, setRenaming] = useState(false);
  const [name, setName] = useState(exp.name);
  const [error, setError] = useState<Problem>();
  const deleted = exp.lifecycleStage === LifecycleStage.DELETED;
  const act = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
      setError(undefined);
      onChanged();
    } catch (err) {
      setError(problemOf(err));
    }
  };
  return (
    <tr>
      <td>
        <input type="checkbox" aria-label={`Select experiment ${exp.name}`} checked={checked} onChange={(e) => onCheck(e.currentTarget.checked)} />
      </td>
      <td>
        {renaming ? (
          <form
            class="row"
            onSubmit={(e) => {
              e.preventDefault();
              act(async () => {
                await tracking.updateExperiment({ experimentId: exp.experimentId, name: name.trim(), updateMask: { paths: ["name"] } });
                setRenaming(false);
              });
            }}
          >
            <input aria-label={`New name for ${exp.name}`} value={name} onInput={(e) => setName(e.currentTarget.value)} />
            <button type="submit">Save name</button>
            <button type="button" class="ghost" onClick={() => setRenaming(false)}>
              Cancel
            </button>
          </form>
        ) : (
          <a href={`/experiments/${exp.experimentId}`}>{exp.name}</a>
        )}
        <ErrorNote problem={error} />
      </td>
      <td class="mono">{exp.experimentId}</td>
      <td>{exp.createTime ? formatTime(timestampMs(exp.createTime)) : ""}</td>
      <td class="clip">{exp.description}</td>
      <td class="actions">
        {!deleted && !renaming && (
          <button type="button" class="ghost" aria-label={`Rename ${exp.name}`} onClick={() => setRenaming(true)}>
            Rename
          </button>
        )}
        {deleted ? (
          <button type="button" class="ghost" aria-label={`Restore ${exp.name}`} onClick={() => act(() => tracking.restoreExperiment({ experimentId: exp.experimentId }))}>
            Restore
          </button>
        ) : (
          <button
            type="button"
            class="ghost danger"
            aria-label={`Delete ${exp.name}`}
            onClick={() => {
              if (window.confirm(`Delete experiment "${exp.name}" and its runs? It can be restored.`))
                act(() => tracking.deleteExperiment({ experimentId: exp.experimentId }));
            }}
          >
            Delete
          </button>
        )}
      </td>
    </tr>
  );
}

export function ExperimentsPage() {
  const { route } = useLocation();
  const [search, setSearch] = useQueryString();
  const params = new URLSearchParams(search);
  const q = params.get("q") ?? "";
  const deleted = params.get("deleted") === "1";
  const [typed, setTyped] = useState(q);
  const [picked, setPicked] = useState<Set<string>>(new Set());
  const list = useAsync((signal) => allExperiments(experimentFilter(q), deleted, signal), [q, deleted]);
  const write = (next: { q?: string; deleted?: boolean }) => {
    const p = new URLSearchParams();
    const nq = next.q ?? q;
    const nd = next.deleted ?? deleted;
    if (nq) p.set("q", nq);
    if (nd) p.set("deleted", "1");
    const s = p.toString();
    setSearch(s ? `?${s}` : "");
  };
  return (
    <section class="page">
      <div class="page-head">
        <h1>Experiments</h1>
        <CreateExperiment onCreated={(e) => route(`/experiments/${e.experimentId}`)} />
      </div>
      <div class="toolbar">
        <form
          role="search"
          onSubmit={(e) => {
            e.preventDefault();
            write({ q: typed });
          }}
        >
          <input
            type="search"
            aria-label="Search experiments"
            placeholder="Search by name, or a filter such as tags.team = 'cv'"
            value={typed}
            onInput={(e) => setTyped(e.currentTarget.value)}
          />
        </form>
        <label class="check">
          <input type="checkbox" checked={deleted} onChange={(e) => write({ deleted: e.currentTarget.checked })} />
          Deleted experiments
        </label>
        <button type="button" disabled={picked.size === 0} onClick={() => route(`/experiments/${[...picked].join(",")}`)}>
          Show runs of {picked.size || ""} selected
        </button>
      </div>
      <ErrorNote problem={list.error} />
      {list.loading && !list.data && <Loading what="experiments" />}
      {list.data && (
        <table class="grid-table" aria-label="Experiments">
          <thead>
            <tr>
              <th scope="col">
                <span class="sr-only">Select</span>
              </th>
              <th scope="col">Name</th>
              <th scope="col">ID</th>
              <th scope="col">Created</th>
              <th scope="col">Description</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.data.map((exp) => (
              <ExperimentRow
                key={exp.experimentId}
                exp={exp}
                checked={picked.has(exp.experimentId)}
                onCheck={(on) => {
                  const next = new Set(picked);
                  if (on) next.add(exp.experimentId);
                  else next.delete(exp.experimentId);
                  setPicked(next);
                }}
                onChanged={list.reload}
              />
            ))}
          </tbody>
        </table>
      )}
      {list.data?.length === 0 && <p class="muted">No experiments{q ? " match" : ""}.</p>}
    </section>
  );
}
