// A registered model: description, tags, aliases (set or move), and its versions with their stages.
import { useRoute } from "preact-iso";
import { registry } from "../api/client";
import { allVersions, ms, stageName } from "../api/models";
import { EditableText, Head, KeyValues, Loading, PageError } from "../components/common";
import { AliasForm, StageForm } from "../components/registry-actions";
import { formatTime } from "../lib/format";
import { useAsync } from "../lib/hooks";

export function ModelPage() {
  const { params } = useRoute();
  const name = decodeURIComponent(params.name);
  const loaded = useAsync(async (signal) => {
    const [model, versions] = await Promise.all([registry.getRegisteredModel({ name }, { signal }).then((r) => r.registeredModel!), allVersions(name, signal)]);
    return { model, versions };
  }, [name]);
  if (loaded.error) return <PageError title={name} problem={loaded.error} />;
  if (!loaded.data) return <Loading what="the model" />;
  const { model, versions } = loaded.data;
  return (
    <section class="page">
      <nav aria-label="Breadcrumb" class="crumbs">
        <a href="/models">Models</a> ›
      </nav>
      <h1>{model.name}</h1>
      <p class="muted">
        Created {formatTime(ms(model.createTime))} · updated {formatTime(ms(model.updateTime))}
      </p>
      <section aria-labelledby="h-desc">
        <h2 id="h-desc">Description</h2>
        <EditableText
          label="Description"
          multiline
          value={model.description}
          onSave={async (description) => {
            await registry.updateRegisteredModel({ name, description, updateMask: { paths: ["description"] } });
            loaded.reload();
          }}
        />
      </section>
      <section aria-labelledby="h-aliases">
        <h2 id="h-aliases">Aliases</h2>
        <KeyValues
          label="Aliases"
          empty="No aliases."
          rows={model.aliases.map((a) => [`@${a.alias}`, <a href={`/models/${encodeURIComponent(name)}/versions/${a.version}`}>Version {String(a.version)}</a>])}
        />
        {versions.length > 0 && <AliasForm name={name} versions={versions.map((v) => v.version)} onDone={loaded.reload} />}
      </section>
      <section aria-labelledby="h-tags">
        <h2 id="h-tags">Tags</h2>
        <KeyValues label="Model tags" rows={model.tags.map((t) => [t.key, t.value])} empty="No tags." />
      </section>
      <section aria-labelledby="h-versions">
        <h2 id="h-versions">Versions</h2>
        <table class="grid-table" aria-label="Versions">
          <Head columns={["Version", "Stage", "Aliases", "Source run", "Created", "By", "Change stage"]} />
          <tbody>
            {versions.map((v) => (
              <tr key={String(v.version)}>
                <td>
                  <a href={`/models/${encodeURIComponent(name)}/versions/${v.version}`}>Version {String(v.version)}</a>
                </td>
                <td>{stageName(v.stage)}</td>
                <td>
                  {v.aliases.map((a) => (
                    <span class="badge alias" key={a}>
                      @{a}
                    </span>
                  ))}
                </td>
                <td>{v.runId ? <a href={`/runs/${v.runId}`} class="mono">{v.runId.slice(0, 8)}</a> : "—"}</td>
                <td>{formatTime(ms(v.createTime))}</td>
                <td>{v.userId}</td>
                <td>
                  <StageForm name={name} version={v.version} stage={v.stage} onDone={loaded.reload} compact />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {versions.length === 0 && <p class="muted">No versions yet.</p>}
      </section>
    </section>
  );
}
