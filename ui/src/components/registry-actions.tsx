// Registry changes made from the model and version pages: move an alias, transition a stage.
// The server decides who may (EDIT on the model); its refusal is shown as it says it.
import { useState } from "preact/hooks";
import { registry } from "../api/client";
import { problemOf, type Problem } from "../api/errors";
import { STAGES, stageName } from "../api/models";
import type { ModelStage } from "../gen/tracklane/v1/registry_pb";
import { ErrorNote } from "./common";

export function AliasForm({ name, versions, initialVersion, onDone }: { name: string; versions: bigint[]; initialVersion?: bigint; onDone: () => void }) {
  const [alias, setAlias] = useState("");
  const [version, setVersion] = useState(String(initialVersion ?? versions[0] ?? ""));
  const [error, setError] = useState<Problem>();
  return (
    <form
      class="row"
      aria-label="Set alias"
      onSubmit={async (e) => {
        e.preventDefault();
        try {
          await registry.setRegisteredModelAlias({ name, alias: alias.trim(), version: BigInt(version) });
          setAlias("");
          setError(undefined);
          onDone();
        } catch (err) {
          setError(problemOf(err));
        }
      }}
    >
      <label>
        Alias
        <input value={alias} placeholder="champion" required onInput={(e) => setAlias(e.currentTarget.value)} />
      </label>
      <label>
        Version
        <select value={version} onChange={(e) => setVersion(e.currentTarget.value)}>
          {versions.map((v) => (
            <option key={String(v)} value={String(v)}>
              {String(v)}
            </option>
          ))}
        </select>
      </label>
      <button type="submit" disabled={!alias.trim() || !version}>
        Set alias
      </button>
      <ErrorNote problem={error} label="Could not set the alias" />
    </form>
  );
}

export function StageForm({ name, version, stage, onDone, compact }: { name: string; version: bigint; stage: ModelStage; onDone: () => void; compact?: boolean }) {
  const [target, setTarget] = useState<ModelStage>(stage);
  const [archive, setArchive] = useState(false);
  const [error, setError] = useState<Problem>();
  return (
    <form
      class="row"
      aria-label={`Stage of version ${version}`}
      onSubmit={async (e) => {
        e.preventDefault();
        try {
          await registry.transitionModelVersionStage({ name, version, stage: target, archiveExistingVersions: archive });
          setError(undefined);
          onDone();
        } catch (err) {
          setError(problemOf(err));
        }
      }}
    >
      <label>
        <span class={compact ? "sr-only" : undefined}>Stage of version {String(version)}</span>
        <select value={String(target)} onChange={(e) => setTarget(Number(e.currentTarget.value) as ModelStage)}>
          {STAGES.map((s) => (
            <option key={s} value={String(s)}>
              {stageName(s)}
            </option>
          ))}
        </select>
      </label>
      <label class="check">
        <input type="checkbox" checked={archive} onChange={(e) => setArchive(e.currentTarget.checked)} />
        Archive others in that stage
      </label>
      <button type="submit" disabled={target === stage}>
        Transition
      </button>
      <ErrorNote problem={error} label="Could not transition" />
    </form>
  );
}
