// One model version: its source run, signature, stage and aliases, and its history as a timeline.
import { useRoute } from "preact-iso";
import { registry } from "../api/client";
import { ms, stageName } from "../api/models";
import { readHead, utf8 } from "../artifacts/fetch";
import { parseMLmodel, Signature, Snippet } from "../artifacts/model-view";
import { EditableText, ErrorNote, KeyValues, Loading, PageError } from "../components/common";
import { AliasForm, StageForm } from "../components/registry-actions";
import { ModelStage, type ModelEvent } from "../gen/tracklane/v1/registry_pb";
import { formatTime } from "../lib/format";
import { useAsync } from "../lib/hooks";

/** `runs:/<run_id>/<path>` -> [run_id, path]. */
export function runsUri(source: string): [string, string] | null {
  const m = /^runs:\/([^/]+)\/?(.*)$/.exec(source);
  return m ? [m[1], m[2].replace(/\/+$/, "")] : null;
}

export function describeEvent(e: ModelEvent): string {
  // Stages are recorded by name ("Staging", MLflow's spelling) or as the enum's name or number.
  const stage = (v: string) => {
    const key = v.toUpperCase().replace(/^MODEL_STAGE_/, "") as keyof typeof ModelStage;
    const known = ModelStage[key] ?? (/^\d+$/.test(v) ? (Number(v) as ModelStage) : undefined);
    return known === undefined ? v || "—" : stageName(known);
  };
  switch (e.kind) {
    case "alias_set":
      return e.oldValue ? `Alias @${e.alias} moved from version ${e.oldValue} to ${e.newValue}` : `Alias @${e.alias} set to version ${e.newValue}`;
    case "alias_deleted":
      return `Alias @${e.alias} removed (was version ${e.oldValue})`;
    case "stage_transition":
      return `Stage changed from ${stage(e.oldValue)} to ${stage(e.newValue)}`;
    case "description_changed":
      return "Description changed";
    case "version_created":
      return e.oldValue ? `Version created as a copy of ${e.oldValue}` : "Version created";
    case "version_deleted":
      return "Version deleted";
    case "model_created":
      return "Model created";
    case "model_renamed":
      return `Model renamed from ${e.oldValue} to ${e.newValue}`;
    default:
      return e.kind;
  }
}

function ModelSignature({ source }: { source: string }) {
  const at = runsUri(source);
  const model = useAsync(async (signal) => {
    if (!at) return null;
    const path = at[1] ? `${at[1]}/MLmodel` : "MLmodel";
    return parseMLmodel(utf8((await readHead(at[0], path, 1024 * 1024, signal)).bytes));
  }, [source]);
  if (!at) return <p class="muted">The source is not a run's artifact; no signature to read.</p>;
  if (model.error) return <ErrorNote problem={model.error} label="Could not read the MLmodel file" />;
  if (!model.data) return <Loading what="the signature" />;
  return <Signature model={model.data} />;
}

export function VersionPage() {
  const { params } = useRoute();
  const name = decodeURIComponent(params.name);
  const version = BigInt(params.version);
  const loaded = useAsync(async (signal) => {
    const [v, events, model] = await Promise.all([
      registry.getModelVersion({ name, version }, { signal }).then((r) => r.modelVersion!),
      registry.listModelEvents({ name, version, pageSize: 1000 }, { signal }).then((r) => r.events),
      registry.getRegisteredModel({ name }, { signal }).then((r) => r.registeredModel!),
    ]);
    return { v, events, model };
  }, [name, String(version)]);
  if (loaded.error) return <PageError title={`${name} version ${version}`} problem={loaded.error} />;
  if (!loaded.data) return <Loading what="the version" />;
  const { v, events } = loaded.data;
  return (
    <section class="page">
      <nav aria-label="Breadcrumb" class="crumbs">
        <a href="/models">Models</a> › <a href={`/models/${encodeURIComponent(name)}`}>{name}</a> ›
      </nav>
      <h1>
        {name} version {String(v.version)}
      </h1>
      <KeyValues
        label="Version details"
        empty=""
        rows={[
          ["Stage", stageName(v.stage)],
          ["Aliases", v.aliases.length ? v.aliases.map((a) => `@${a}`).join(", ") : "—"],
          ["Source run", v.runId ? <a href={`/runs/${v.runId}`}>{v.runId}</a> : "—"],
          ["Source", <code>{v.source}</code>],
          ["Created", formatTime(ms(v.createTime))],
          ["Created by", v.userId || "—"],
          ["Status", v.statusMessage || "Ready"],
        ]}
      />
      <section aria-labelledby="h-desc">
        <h2 id="h-desc">Description</h2>
        <EditableText
          label="Description"
          multiline
          value={v.description}
          onSave={async (description) => {
            await registry.updateModelVersion({ name, version, description, updateMask: { paths: ["description"] } });
            loaded.reload();
          }}
        />
      </section>
      <section aria-labelledby="h-manage">
        <h2 id="h-manage">Stage and aliases</h2>
        <StageForm name={name} version={v.version} stage={v.stage} onDone={loaded.reload} />
        <AliasForm name={name} versions={[v.version]} initialVersion={v.version} onDone={loaded.reload} />
      </section>
      <section aria-labelledby="h-signature">
        <h2 id="h-signature">Signature</h2>
        <ModelSignature source={v.source} />
        <Snippet uri={`models:/${name}/${v.version}`} />
      </section>
      <section aria-labelledby="h-history">
        <h2 id="h-history">History</h2>
        {events.length === 0 ? (
          <p class="muted">No events.</p>
        ) : (
          <ol class="timeline" aria-label="Version history">
            {events.map((e, i) => (
              <li key={i}>
                <time>{formatTime(ms(e.time))}</time>
                <span>{describeEvent(e)}</span>
                <span class="muted">{e.userId ? `by ${e.userId}` : ""}</span>
              </li>
            ))}
          </ol>
        )}
      </section>
    </section>
  );
}
