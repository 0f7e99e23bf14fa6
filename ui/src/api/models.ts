// Registry helpers shared by the model pages.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { ModelStage, type ModelVersion } from "../gen/tracklane/v1/registry_pb";
import { registry } from "./client";

export const STAGES: ModelStage[] = [ModelStage.NONE, ModelStage.STAGING, ModelStage.PRODUCTION, ModelStage.ARCHIVED];

export const stageName = (s: ModelStage): string =>
  ({ [ModelStage.NONE]: "None", [ModelStage.STAGING]: "Staging", [ModelStage.PRODUCTION]: "Production", [ModelStage.ARCHIVED]: "Archived" })[s as number] ?? "—";

export const ms = (t: { seconds: bigint; nanos: number } | undefined): number => (t ? timestampMs(t as never) : 0);

export async function allVersions(name: string, signal?: AbortSignal): Promise<ModelVersion[]> {
  const out: ModelVersion[] = [];
  let pageToken = "";
  do {
    const res = await registry.searchModelVersions(
      { filter: `name = '${name.replaceAll("'", "''")}'`, orderBy: ["version DESC"], pageSize: 1000, pageToken },
      { signal },
    );
    out.push(...res.modelVersions);
    pageToken = res.nextPageToken;
  } while (pageToken && out.length < 10_000);
  return out;
}
