// Which preview a file gets, by name.

export type PreviewKind = "mlmodel" | "image" | "html" | "csv" | "parquet" | "code" | "text" | "none";

const IMAGE = /\.(png|jpe?g|gif|webp|svg|bmp|ico|avif)$/i;
const CODE: Record<string, string> = {
  json: "json",
  yaml: "yaml",
  yml: "yaml",
  py: "python",
  toml: "ini",
  ini: "ini",
  cfg: "ini",
  sh: "bash",
  md: "markdown",
  sql: "sql",
  xml: "xml",
};
const TEXT = /\.(txt|log|out|err|rst|conf|env|lock|requirements)$|^(requirements\.txt|Dockerfile|MLproject|LICENSE|README)$/i;

export function previewKind(name: string): PreviewKind {
  const base = name.split("/").pop() ?? name;
  if (base === "MLmodel") return "mlmodel";
  if (IMAGE.test(base)) return "image";
  if (/\.html?$/i.test(base)) return "html";
  if (/\.(csv|tsv)$/i.test(base)) return "csv";
  if (/\.parquet$/i.test(base)) return "parquet";
  if (codeLanguage(base)) return "code";
  if (TEXT.test(base) || !base.includes(".")) return "text";
  return "none";
}

export function codeLanguage(name: string): string | undefined {
  const ext = name.split(".").pop()?.toLowerCase() ?? "";
  return name.includes(".") ? CODE[ext] : undefined;
}
