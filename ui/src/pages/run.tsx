// One run: overview (params, metrics with summaries, tags, description, datasets, parent and
// children, registered versions, system metrics), a chart per metric, and its artifacts.
import { useMemo } from "preact/hooks";
import { useLocation, useRoute } from "preact-iso";
import { registry, tracking } from "../api/client";
import { ATTRIBUTE_TAGS, durationMs, type RunRow, searchAllRuns, toRow } from "../api/runs";
import { ArtifactBrowser } from "../artifacts/browser";
import { MetricCharts } from "../charts/metric-charts";
import { EditableText, ErrorNote, Head, KeyValues, Loading, PageError, StatusBadge } from "../components/common";
import { ModelStage } from "../gen/tracklane/v1/registry_pb";
import { formatDuration, formatNumber, formatTime } from "../lib/format";
import { useAsync, useQueryString } from "../lib/hooks";
import { parseChart, writeChart } from "../lib/url";

const TABS = ["overview", "charts", "artifacts"] as const;
type Tab = (typeof TABS)[number];
/** Children are found among the experiment's runs, up to this many. */
const CHILD_SCAN = 5000;

function MetricsTable({ run }: { run: RunRow }) {
  const rows = [...run.metrics.entries()].filter(([k]) => !k.startsWith("system/"));
  return <MetricRows label="Metrics" rows={rows} />;
}

function MetricRows({ label, rows }: { label: string; rows: [string, RunRow["metrics"] extends Map<string, infer V> ? V : never][] }) {
  if (rows.length === 0) return <p class="muted">No {label.toLowerCase()}.</p>;
  return (
    <table class="grid-table" aria-label={label}>
      <Head columns={["Key", "Latest", "Step", "Min", "Max", "First", "Points"]} />
      <tbody>
        {rows.map(([k, m]) => (
          <tr key={k}>
            <th scope="row">{k}</th>
            <td class="num">{formatNumber(m.latest)}</td>
            <td class="num">{m.step}</td>
            <td class="num">{formatNumber(m.min)}</td>
            <td class="num">{formatNumber(m.max)}</td>
            <td class="num">{formatNumber(m.first)}</td>
            <td class="num">{m.count ?? ""}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Related({ run }: { run: RunRow }) {
  const related = useAsync(
    async (signal) => {
      const [parent, siblings, versions] = await Promise.all([
        run.parentId ? tracking.getRun({ runId: run.parentId }, { signal }).then((r) => toRow(r.run!)) : Promise.resolve(undefined),
        searchAllRuns({ experimentIds: [run.experimentId], filter: "", orderBy: [], deleted: false }, CHILD_SCAN, signal),
        registry.searchModelVersions({ filter: `run_id = '${run.id}'`, pageSize: 100 }, { signal }).then((r) => r.modelVersions),
      ]);
      return { parent, children: siblings.filter((r) => r.parentId === run.id), versions };
    },
    [run.id],
  );
  if (related.error) return <ErrorNote problem={related.error} />;
  if (!related.data) return <Loading what="related runs" />;
  const { parent, children, versions } = related.data;
  return (
    <>
      <section aria-labelledby="h-lineage">
        <h2 id="h-lineage">Parent and children</h2>
        {parent ? (
          <p>
            Parent: <a href={`/runs/${parent.id}`}>{parent.name || parent.id}</a>
          </p>
        ) : (
          <p class="muted">No parent run.</p>
        )}
        {children.length ? (
          <ul aria-label="Child runs">
            {children.map((c) => (
              <li key={c.id}>
                <a href={`/runs/${c.id}`}>{c.name || c.id}</a> <StatusBadge status={c.status} />
              </li>
            ))}
          </ul>
        ) : (
          <p class="muted">No child runs.</p>
        )}
      </section>
      <section aria-labelledby="h-versions">
        <h2 id="h-versions">Registered model versions</h2>
        {versions.length ? (
          <ul aria-label="Registered versions">
            {versions.map((v) => (
              <li key={`${v.name}/${v.version}`}>
                <a href={`/models/${encodeURIComponent(v.name)}/versions/${v.version}`}>
                  {v.name} version {String(v.version)}
                </a>{" "}
                <span class="badge">{ModelStage[v.stage]?.replace("MODEL_STAGE_", "")}</span>
                {v.aliases.map((a) => (
                  <span class="badge alias" key={a}>
                    @{a}
                  </span>
                ))}
              </li>
            ))}
          </ul>
        ) : (
          <p class="muted">This run produced no registered versions.</p>
        )}
      </section>
    </>
  );
}

function Overview({ run, reload }: { run: RunRow; reload: () => void }) {
  const tags = [...run.tags.entries()].filter(([key]) => !ATTRIBUTE_TAGS.has(key));
  const system = [...run.metrics.entries()].filter(([k]) => k.startsWith("system/"));
  const inputs = run.run.inputs?.datasetInputs ?? [];
  return (
    <div class="overview">
      <section aria-labelledby="h-about">
        <h2 id="h-about">About</h2>
        <KeyValues
          label="Run details"
          empty=""
          rows={[
            ["Run ID", <code>{run.id}</code>],
            ["Experiment", <a href={`/experiments/${run.experimentId}`}>{run.experimentId}</a>],
            ["Status", <StatusBadge status={run.status} />],
            ["Started", formatTime(run.start)],
            ["Ended", run.end ? formatTime(run.end) : "—"],
            ["Duration", formatDuration(durationMs(run, Date.now()) ?? NaN)],
            ["User", run.user || "—"],
            ["Source", run.source || "—"],
            ["Artifacts", <code>{run.artifactUri}</code>],
          ]}
        />
        <h3>Description</h3>
        <EditableText
          label="Description"
          multiline
          value={run.description}
          onSave={async (description) => {
            await tracking.updateRun({ runId: run.id, description, updateMask: { paths: ["description"] } });
            reload();
          }}
        />
      </section>
      <section aria-labelledby="h-params">
        <h2 id="h-params">Params</h2>
        <KeyValues label="Params" rows={[...run.params.entries()]} empty="No params." />
      </section>
      <section aria-labelledby="h-metrics">
        <h2 id="h-metrics">Metrics</h2>
        <MetricsTable run={run} />
      </section>
      <section aria-labelledby="h-tags">
        <h2 id="h-tags">Tags</h2>
        <KeyValues label="Tags" rows={tags} empty="No tags." />
      </section>
      <section aria-labelledby="h-datasets">
        <h2 id="h-datasets">Datasets</h2>
        {inputs.length ? (
          <table class="grid-table" aria-label="Datasets">
            <Head columns={["Name", "Context", "Digest", "Source"]} />
            <tbody>
              {inputs.map((d, i) => (
                <tr key={i}>
                  <td>{d.dataset?.name}</td>
                  <td>{d.context}</td>
                  <td class="mono">{d.dataset?.digest}</td>
                  <td class="clip">
                    {d.dataset?.sourceType}: {d.dataset?.source}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p class="muted">No datasets.</p>
        )}
      </section>
      <Related run={run} />
      <section aria-labelledby="h-system">
        <h2 id="h-system">System metrics</h2>
        <MetricRows label="System metrics" rows={system} />
      </section>
    </div>
  );
}

export function RunPage() {
  const { params } = useRoute();
  const { route } = useLocation();
  const runId = params.runId;
  const [search, setSearch] = useQueryString();
  const q = new URLSearchParams(search);
  const tab: Tab = (TABS as readonly string[]).includes(q.get("tab") ?? "") ? (q.get("tab") as Tab) : "overview";
  const chart = parseChart(q);
  const loaded = useAsync((signal) => tracking.getRun({ runId }, { signal }).then((r) => toRow(r.run!)), [runId]);
  const run = loaded.data;
  const setTab = (t: Tab) => {
    const p = new URLSearchParams(search);
    if (t === "overview") p.delete("tab");
    else p.set("tab", t);
    if (t !== "artifacts") p.delete("path");
    const s = p.toString();
    setSearch(s ? `?${s}` : "", true);
  };
  const runs = useMemo(() => (run ? [run] : []), [run]);
  if (loaded.error) return <PageError title="Run" problem={loaded.error} />;
  if (!run) return <Loading what="the run" />;
  return (
    <section class="page">
      <nav aria-label="Breadcrumb" class="crumbs">
        <a href={`/experiments/${run.experimentId}`}>Experiment {run.experimentId}</a> ›
      </nav>
      <div class="page-head">
        <h1>
          {run.name || run.id} <StatusBadge status={run.status} />
        </h1>
        <button type="button" onClick={() => route(`/compare?runs=${run.id}`)} class="ghost">
          Compare…
        </button>
      </div>
      <div role="tablist" aria-label="Run sections" class="tabs">
        {TABS.map((t) => (
          <button
            key={t}
            type="button"
            role="tab"
            id={`tab-${t}`}
            aria-selected={tab === t}
            aria-controls={`panel-${t}`}
            tabIndex={tab === t ? 0 : -1}
            onClick={() => setTab(t)}
            onKeyDown={(e) => {
              const i = TABS.indexOf(tab);
              if (e.key === "ArrowRight") setTab(TABS[(i + 1) % TABS.length]);
              if (e.key === "ArrowLeft") setTab(TABS[(i + TABS.length - 1) % TABS.length]);
            }}
          >
            {t[0].toUpperCase() + t.slice(1)}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`}>
        {tab === "overview" && <Overview run={run} reload={loaded.reload} />}
        {tab === "charts" && (
          <MetricCharts
            runs={runs}
            chart={chart}
            onChart={(c) => {
              const p = new URLSearchParams(search);
              for (const k of ["x", "logx", "logy", "smooth"]) p.delete(k);
              writeChart(p, c);
              setSearch(`?${p.toString()}`);
            }}
          />
        )}
        {tab === "artifacts" && <ArtifactBrowser run={run} />}
      </div>
    </section>
  );
}
