// Artifact bytes over the server's plain-HTTP download (the session cookie authenticates it):
// previews read only their first bytes with a Range request, so a 10 GiB file never hangs the tab.

export function artifactUrl(runId: string, path: string, download = false): string {
  const p = path.split("/").map(encodeURIComponent).join("/");
  return `/artifacts/${encodeURIComponent(runId)}/${p}${download ? "?download=1" : ""}`;
}

export interface Head {
  bytes: Uint8Array;
  /** The file's full size, from Content-Range (or the body when the server sent it whole). */
  size: number;
  truncated: boolean;
}

export async function readHead(runId: string, path: string, limit: number, signal?: AbortSignal): Promise<Head> {
  const res = await fetch(artifactUrl(runId, path), { headers: { Range: `bytes=0-${limit - 1}` }, signal, credentials: "same-origin" });
  if (res.status === 416) return { bytes: new Uint8Array(0), size: 0, truncated: false }; // empty file
  if (!res.ok) {
    let message = `HTTP ${res.status}`;
    try {
      message = ((await res.json()) as { message?: string }).message ?? message;
    } catch {
      /* not JSON */
    }
    throw new Error(message);
  }
  const bytes = new Uint8Array(await res.arrayBuffer()).subarray(0, limit);
  const range = res.headers.get("content-range");
  const size = range ? Number(range.split("/")[1]) : bytes.length;
  return { bytes, size, truncated: size > bytes.length };
}

export const utf8 = (bytes: Uint8Array): string => new TextDecoder("utf-8", { fatal: false }).decode(bytes);
