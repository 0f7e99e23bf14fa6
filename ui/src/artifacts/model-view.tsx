// An MLmodel file: flavors, signature (inputs, outputs, params) and how to load the model.
import type { RunRow } from "../api/runs";
import { ErrorNote, Head, KeyValues, Loading } from "../components/common";
import { useAsync } from "../lib/hooks";
import { readHead, utf8 } from "./fetch";

interface ColumnSpec {
  name?: string;
  type?: string;
  required?: boolean;
  /** MLflow's tensor spec: `{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 2]}}`. */
  "tensor-spec"?: { dtype?: string; shape?: number[] };
}

function typeOf(c: ColumnSpec): string {
  if (c.type !== "tensor") return c.type ?? "";
  const t = c["tensor-spec"] ?? {};
  const shape = (t.shape ?? []).map((d) => (d === -1 ? "any" : String(d))).join(" × ");
  return `tensor of ${t.dtype ?? "?"}${shape ? `, shape (${shape})` : ""}`;
}

export interface MLmodel {
  flavors: Record<string, Record<string, unknown>>;
  signature?: { inputs?: ColumnSpec[]; outputs?: ColumnSpec[]; params?: ColumnSpec[] };
  run_id?: string;
  artifact_path?: string;
  model_uuid?: string;
  utc_time_created?: string;
}

function specs(raw: unknown): ColumnSpec[] | undefined {
  if (typeof raw === "string") {
    try {
      return JSON.parse(raw) as ColumnSpec[];
    } catch {
      return undefined;
    }
  }
  return Array.isArray(raw) ? (raw as ColumnSpec[]) : undefined;
}

export async function parseMLmodel(text: string): Promise<MLmodel> {
  const { parse } = await import("yaml");
  const doc = (parse(text) ?? {}) as Record<string, unknown>;
  const sig = doc.signature as Record<string, unknown> | undefined;
  return {
    flavors: (doc.flavors ?? {}) as MLmodel["flavors"],
    signature: sig ? { inputs: specs(sig.inputs), outputs: specs(sig.outputs), params: specs(sig.params) } : undefined,
    run_id: doc.run_id as string | undefined,
    artifact_path: doc.artifact_path as string | undefined,
    model_uuid: doc.model_uuid as string | undefined,
    utc_time_created: doc.utc_time_created as string | undefined,
  };
}

export function Signature({ model }: { model: MLmodel }) {
  if (!model.signature) return <p class="muted">No signature was logged with this model.</p>;
  const part = (label: string, cols?: ColumnSpec[]) =>
    cols && cols.length ? (
      <table class="grid-table" aria-label={`Signature ${label}`}>
        <caption>{label}</caption>
        <Head columns={["Name", "Type", "Required"]} />
        <tbody>
          {cols.map((c, i) => (
            <tr key={i}>
              <td>{c.name ?? `#${i}`}</td>
              <td class="mono">{typeOf(c)}</td>
              <td>{c.required === false ? "no" : "yes"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    ) : null;
  return (
    <div class="signature">
      {part("Inputs", model.signature.inputs)}
      {part("Outputs", model.signature.outputs)}
      {part("Params", model.signature.params)}
    </div>
  );
}

export function loadSnippet(uri: string): string {
  return `import tracklane.pyfunc\n\nmodel = tracklane.pyfunc.load_model("${uri}")\npredictions = model.predict(data)\n`;
}

export function Snippet({ uri }: { uri: string }) {
  const code = loadSnippet(uri);
  return (
    <div class="snippet">
      <div class="row spread">
        <h3>Load this model</h3>
        <button type="button" class="ghost small" onClick={() => navigator.clipboard?.writeText(code)}>
          Copy code
        </button>
      </div>
      <pre class="code" aria-label="Code to load this model">
        <code>{code}</code>
      </pre>
    </div>
  );
}

export function ModelView({ run, path }: { run: RunRow; path: string }) {
  const model = useAsync(async (signal) => parseMLmodel(utf8((await readHead(run.id, path, 1024 * 1024, signal)).bytes)), [run.id, path]);
  if (model.error) return <ErrorNote problem={model.error} />;
  if (!model.data) return <Loading what="the model" />;
  const dir = path.split("/").slice(0, -1).join("/");
  const m = model.data;
  return (
    <div class="model-view">
      <h3>Model</h3>
      <KeyValues
        label="Model"
        empty=""
        rows={[
          ["Flavors", Object.keys(m.flavors).join(", ") || "—"],
          ["Created", m.utc_time_created ?? "—"],
          ["Model UUID", m.model_uuid ?? "—"],
        ]}
      />
      <h3>Signature</h3>
      <Signature model={m} />
      <Snippet uri={`runs:/${run.id}/${dir}`} />
    </div>
  );
}
