// Registered models, with search.
import { useState } from "preact/hooks";
import { registry } from "../api/client";
import { ms, stageName } from "../api/models";
import { ErrorNote, Head, Loading } from "../components/common";
import { formatTime } from "../lib/format";
import { useAsync, useQueryString } from "../lib/hooks";

export function modelFilter(text: string): string {
  const q = text.trim();
  if (!q) return "";
  if (/[=<>]|\bLIKE\b/i.test(q)) return q;
  return `name ILIKE '%${q.replaceAll("'", "''")}%'`;
}

export function ModelsPage() {
  const [search, setSearch] = useQueryString();
  const q = new URLSearchParams(search).get("q") ?? "";
  const [typed, setTyped] = useState(q);
  const list = useAsync(async (signal) => {
    const res = await registry.searchRegisteredModels({ filter: modelFilter(q), orderBy: ["name ASC"], pageSize: 1000 }, { signal });
    return res.registeredModels;
  }, [q]);
  return (
    <section class="page">
      <h1>Registered models</h1>
      <form
        role="search"
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          setSearch(typed ? `?q=${encodeURIComponent(typed)}` : "");
        }}
      >
        <input type="search" aria-label="Search models" placeholder="Search by name, or a filter such as tags.team = 'risk'" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />
      </form>
      <ErrorNote problem={list.error} />
      {!list.data && !list.error && <Loading what="models" />}
      {list.data && (
        <table class="grid-table" aria-label="Registered models">
          <Head columns={["Name", "Latest versions", "Aliases", "Updated", "Description"]} />
          <tbody>
            {list.data.map((m) => (
              <tr key={m.name}>
                <td>
                  <a href={`/models/${encodeURIComponent(m.name)}`}>{m.name}</a>
                </td>
                <td>
                  {m.latestVersions.map((v) => (
                    <span class="badge" key={String(v.version)}>
                      v{String(v.version)} {stageName(v.stage)}
                    </span>
                  ))}
                </td>
                <td>
                  {m.aliases.map((a) => (
                    <span class="badge alias" key={a.alias}>
                      @{a.alias} → v{String(a.version)}
                    </span>
                  ))}
                </td>
                <td>{formatTime(ms(m.updateTime))}</td>
                <td class="clip">{m.description}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {list.data?.length === 0 && <p class="muted">No registered models{q ? " match" : ""}.</p>}
    </section>
  );
}
