// A run's artifacts: a folder tree (each level listed when opened) and a preview of the chosen file.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { useState } from "preact/hooks";
import { artifacts } from "../api/client";
import type { RunRow } from "../api/runs";
import { ErrorNote, Loading } from "../components/common";
import type { FileInfo } from "../gen/tracklane/v1/artifacts_pb";
import { formatBytes, formatTime } from "../lib/format";
import { useAsync, useQueryString } from "../lib/hooks";
import { artifactUrl } from "./fetch";
import { Preview } from "./preview";

async function listAll(runId: string, path: string, signal: AbortSignal): Promise<FileInfo[]> {
  const out: FileInfo[] = [];
  let pageToken = "";
  do {
    const res = await artifacts.listArtifacts({ runId, path, pageSize: 1000, pageToken }, { signal });
    out.push(...res.files);
    pageToken = res.nextPageToken;
  } while (pageToken && out.length < 10_000);
  return out;
}

const nameOf = (path: string) => path.split("/").pop() ?? path;

function Folder({ runId, path, level, selected, onSelect }: { runId: string; path: string; level: number; selected: string; onSelect: (f: FileInfo) => void }) {
  const list = useAsync((signal) => listAll(runId, path, signal), [runId, path]);
  const [open, setOpen] = useState<Set<string>>(() => new Set(selected.split("/").map((_, i, a) => a.slice(0, i + 1).join("/"))));
  if (list.error) return <ErrorNote problem={list.error} />;
  if (!list.data) return <Loading what="artifacts" />;
  if (list.data.length === 0 && level === 1) return <p class="muted">This run has no artifacts.</p>;
  return (
    <ul role={level === 1 ? "tree" : "group"} aria-label={level === 1 ? "Artifacts" : undefined}>
      {list.data.map((f) => {
        const isOpen = f.isDir && open.has(f.path);
        return (
          <li
            key={f.path}
            role="treeitem"
            aria-level={level}
            aria-expanded={f.isDir ? isOpen : undefined}
            aria-selected={selected === f.path}
          >
            <button
              type="button"
              class={`tree-node${selected === f.path ? " active" : ""}`}
              onClick={() => {
                if (f.isDir) {
                  const next = new Set(open);
                  if (isOpen) next.delete(f.path);
                  else next.add(f.path);
                  setOpen(next);
                }
                onSelect(f);
              }}
            >
              <span aria-hidden="true">{f.isDir ? (isOpen ? "▾ " : "▸ ") : "  "}</span>
              {nameOf(f.path)}
              {!f.isDir && <span class="muted"> {formatBytes(Number(f.size))}</span>}
            </button>
            {isOpen && <Folder runId={runId} path={f.path} level={level + 1} selected={selected} onSelect={onSelect} />}
          </li>
        );
      })}
    </ul>
  );
}

export function ArtifactBrowser({ run }: { run: RunRow }) {
  const [search, setSearch] = useQueryString();
  const params = new URLSearchParams(search);
  const path = params.get("path") ?? "";
  const [picked, setPicked] = useState<FileInfo | null>(null);
  const select = (f: FileInfo) => {
    setPicked(f);
    params.set("path", f.path);
    setSearch(`?${params.toString()}`);
  };
  const current = picked && picked.path === path ? picked : null;
  return (
    <div class="artifacts">
      <nav class="artifact-tree" aria-label="Artifact files">
        <Folder runId={run.id} path="" level={1} selected={path} onSelect={select} />
      </nav>
      <div class="artifact-view">
        {path ? (
          <>
            <div class="row spread">
              <h2 class="mono">{path}</h2>
              {!current?.isDir && (
                <a class="button ghost" href={artifactUrl(run.id, path, true)} download>
                  Download
                </a>
              )}
            </div>
            {current && !current.isDir && (
              <p class="muted">
                {formatBytes(Number(current.size))}
                {current.modifyTime ? ` · ${formatTime(timestampMs(current.modifyTime))}` : ""}
                {current.sha256 ? ` · sha256 ${current.sha256.slice(0, 12)}…` : ""}
              </p>
            )}
            <Preview run={run} path={path} isDir={current?.isDir ?? false} size={current ? Number(current.size) : undefined} />
          </>
        ) : (
          <p class="muted">Choose a file to preview it.</p>
        )}
      </div>
    </div>
  );
}
