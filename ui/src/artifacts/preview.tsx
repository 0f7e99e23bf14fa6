// Previews by file kind, each capped: text and tables read only the file's first bytes (Range),
// Parquet reads its footer and first row group by ranges, images and HTML load by URL (HTML in a
// sandboxed frame, with the server's sandboxing CSP on top). Parsers and highlighters load lazily.
// Parquet: hyparquet reads uncompressed and Snappy files (pandas' and Spark's default); the codecs
// for zstd/gzip/brotli come as WebAssembly, which the page's CSP (no 'wasm-unsafe-eval') forbids.
import { useEffect, useRef } from "preact/hooks";
import { artifacts } from "../api/client";
import type { RunRow } from "../api/runs";
import { ErrorNote, Loading } from "../components/common";
import { formatBytes } from "../lib/format";
import { useAsync } from "../lib/hooks";
import { artifactUrl, readHead, utf8 } from "./fetch";
import { codeLanguage, previewKind } from "./kinds";
import { ModelView } from "./model-view";

export const TEXT_CAP = 512 * 1024;
export const TABLE_CAP = 1024 * 1024;
export const TABLE_ROWS = 500;
export const IMAGE_CAP = 32 * 1024 * 1024;
export const HTML_CAP = 8 * 1024 * 1024;

function Truncated({ shown, size }: { shown: number; size: number }) {
  if (size <= shown) return null;
  return (
    <p class="muted" role="note">
      Showing the first {formatBytes(shown)} of {formatBytes(size)}. Download the file for the rest.
    </p>
  );
}

function Code({ run, path }: { run: RunRow; path: string }) {
  const lang = codeLanguage(path);
  const head = useAsync(async (signal) => {
    const h = await readHead(run.id, path, TEXT_CAP, signal);
    let text = utf8(h.bytes);
    if (lang === "json" && !h.truncated) {
      try {
        text = JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        /* shown as it is */
      }
    }
    const { highlight } = await import("./highlight");
    return { ...h, html: lang ? highlight(text, lang) : undefined, text };
  }, [run.id, path]);
  const code = useRef<HTMLElement>(null);
  useEffect(() => {
    // highlight.js escapes the text; its output is set as markup only here.
    if (code.current && head.data?.html !== undefined) code.current.innerHTML = head.data.html;
  }, [head.data]);
  if (head.error) return <ErrorNote problem={head.error} />;
  if (!head.data) return <Loading what="the file" />;
  return (
    <>
      <Truncated shown={head.data.bytes.length} size={head.data.size} />
      <pre class="code" aria-label={`Contents of ${path}`} tabIndex={0}>
        <code ref={code} class="hljs">
          {head.data.html === undefined ? head.data.text : null}
        </code>
      </pre>
    </>
  );
}

function Table({ label, columns, rows }: { label: string; columns: string[]; rows: unknown[][] }) {
  return (
    <div class="table-scroll" tabIndex={0}>
      <table class="grid-table" aria-label={label}>
        <thead>
          <tr>
            {columns.map((c, i) => (
              <th scope="col" key={i}>
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              {r.map((v, j) => (
                <td key={j}>{v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? String(x) : x)) : String(v)}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Csv({ run, path }: { run: RunRow; path: string }) {
  const parsed = useAsync(async (signal) => {
    const h = await readHead(run.id, path, TABLE_CAP, signal);
    let text = utf8(h.bytes);
    if (h.truncated) text = text.slice(0, text.lastIndexOf("\n") + 1); // drop the cut-off line
    const Papa = (await import("papaparse")).default;
    const out = Papa.parse<string[]>(text, { delimiter: path.toLowerCase().endsWith(".tsv") ? "\t" : "", skipEmptyLines: true, preview: TABLE_ROWS + 1 });
    const [header = [], ...rows] = out.data;
    return { header, rows, size: h.size, shown: h.bytes.length };
  }, [run.id, path]);
  if (parsed.error) return <ErrorNote problem={parsed.error} />;
  if (!parsed.data) return <Loading what="the table" />;
  const d = parsed.data;
  return (
    <>
      <p class="muted">
        {d.rows.length} rows shown{d.rows.length >= TABLE_ROWS ? ` (the first ${TABLE_ROWS})` : ""}
      </p>
      <Truncated shown={d.shown} size={d.size} />
      <Table label={`Table ${path}`} columns={d.header} rows={d.rows} />
    </>
  );
}

function Parquet({ run, path, size }: { run: RunRow; path: string; size?: number }) {
  const parsed = useAsync(async () => {
    const { asyncBufferFromUrl, parquetMetadataAsync, parquetReadObjects, parquetSchema } = await import("hyparquet");
    const file = await asyncBufferFromUrl({ url: new URL(artifactUrl(run.id, path), location.origin).href, byteLength: size, requestInit: { credentials: "same-origin" } });
    const metadata = await parquetMetadataAsync(file);
    const columns = parquetSchema(metadata).children.map((c) => c.element.name);
    const rows = await parquetReadObjects({ file, metadata, rowEnd: Math.min(TABLE_ROWS, Number(metadata.num_rows)) });
    return { columns, rows: rows.map((r) => columns.map((c) => r[c])), total: Number(metadata.num_rows) };
  }, [run.id, path]);
  if (parsed.error) return <ErrorNote problem={parsed.error} />;
  if (!parsed.data) return <Loading what="the Parquet file" />;
  const d = parsed.data;
  return (
    <>
      <p class="muted">
        {d.total.toLocaleString("en")} rows, {d.columns.length} columns; showing the first {d.rows.length}.
      </p>
      <Table label={`Table ${path}`} columns={d.columns} rows={d.rows} />
    </>
  );
}

function Html({ run, path }: { run: RunRow; path: string }) {
  const head = useAsync((signal) => readHead(run.id, path, HTML_CAP, signal), [run.id, path]);
  if (head.error) return <ErrorNote problem={head.error} />;
  if (!head.data) return <Loading what="the page" />;
  // The file's own bytes in a frame with an empty sandbox: an opaque origin, no scripts, no forms,
  // no navigation of this page; the page's CSP applies on top. (The download URL itself cannot be
  // framed: the server forbids framing of its responses.)
  return (
    <>
      <Truncated shown={head.data.bytes.length} size={head.data.size} />
      <iframe class="artifact-html" sandbox="" srcdoc={utf8(head.data.bytes)} title={`HTML ${path}`} />
    </>
  );
}

function FolderModel({ run, path }: { run: RunRow; path: string }) {
  const has = useAsync(
    (signal) => artifacts.listArtifacts({ runId: run.id, path, pageSize: 1000 }, { signal }).then((r) => r.files.some((f) => f.path === `${path}/MLmodel`)),
    [run.id, path],
  );
  if (!has.data) return <p class="muted">A folder: open it in the tree.</p>;
  return <ModelView run={run} path={`${path}/MLmodel`} />;
}

export function Preview({ run, path, isDir, size }: { run: RunRow; path: string; isDir: boolean; size?: number }) {
  if (isDir) return <FolderModel run={run} path={path} />;
  const kind = previewKind(path);
  switch (kind) {
    case "mlmodel":
      return <ModelView run={run} path={path} />;
    case "image":
      if (size !== undefined && size > IMAGE_CAP) return <p class="muted">Too large to preview ({formatBytes(size)}).</p>;
      return <img class="artifact-image" src={artifactUrl(run.id, path)} alt={`Image ${path}`} />;
    case "html":
      return <Html run={run} path={path} />;
    case "csv":
      return <Csv run={run} path={path} />;
    case "parquet":
      return <Parquet run={run} path={path} size={size} />;
    case "code":
    case "text":
      return <Code run={run} path={path} />;
    default:
      return <p class="muted">No preview for this kind of file. Download it to open it.</p>;
  }
}
