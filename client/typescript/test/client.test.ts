import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, test } from "node:test";

import {
  AlreadyExistsError,
  InvalidArgumentError,
  NotFoundError,
  RunStatus,
  TracklaneClient,
} from "../src/index.js";
import { startServer, type TestServer } from "./server.js";

let server: TestServer;
let client: TracklaneClient;
const unique = (prefix: string): string => `${prefix}-${Date.now()}-${randomBytes(3).toString("hex")}`;

before(async () => {
  server = await startServer();
  client = await TracklaneClient.connect(server.address);
});

after(async () => {
  client?.close();
  await server?.stop();
});

test("experiments, runs, params, tags and typed errors", async () => {
  const name = unique("ts-exp");
  const exp = await client.createExperiment(name, { tags: { team: "ts" } });
  await assert.rejects(client.createExperiment(name), AlreadyExistsError);
  assert.equal((await client.getExperimentByName(name)).experimentId, exp.experimentId);

  const run = await client.createRun({ experimentId: exp.experimentId, runName: "baseline" });
  const runId = run.info!.runId;
  await client.logParams(runId, { lr: 0.01, layers: 3 });
  await client.setTags(runId, { stage: "dev" });
  await assert.rejects(client.logParams(runId, { lr: 0.02 }), (err: unknown) => {
    assert.ok(err instanceof InvalidArgumentError);
    assert.notEqual(err.field, "", "the error names the field");
    return true;
  });

  const got = await client.getRun(runId);
  assert.deepEqual(
    Object.fromEntries(got.data!.params.map((p) => [p.key, p.value])),
    { layers: "3", lr: "0.01" },
  );
  assert.equal(got.data!.tags.find((t) => t.key === "stage")?.value, "dev");

  const found: string[] = [];
  for await (const r of client.searchRuns([exp.experimentId], { filter: "params.lr = '0.01'" })) {
    found.push(r.info!.runId);
  }
  assert.deepEqual(found, [runId]);

  const info = await client.endRun(runId);
  assert.equal(info.status, RunStatus.RUN_STATUS_FINISHED);
  assert.ok(info.endTime instanceof Date);
  await assert.rejects(client.getRun("0123456789abcdef0123456789abcdef"), NotFoundError);
});

test("streams 100,000 points and reads them back exactly", async () => {
  const run = await client.createRun();
  const runId = run.info!.runId;
  const n = 100_000;
  const t0 = 1_700_000_000_000;
  const streamer = client.metricStreamer({ batchPoints: 7_000, window: 4 });
  for (let i = 0; i < n; i++) {
    if (!streamer.log(runId, "loss", i === 500 ? NaN : Math.sin(i) * 1e3, i, t0 + i)) {
      await streamer.drained();
    }
  }
  await streamer.close();
  assert.deepEqual(streamer.stats, { logged: n, acked: n, written: n });
  assert.throws(() => streamer.log(runId, "loss", 1));

  const history = await client.getMetricHistory(runId, "loss");
  assert.equal(history.steps.length, n);
  for (let i = 0; i < n; i++) {
    assert.equal(history.steps[i], i);
    assert.equal(history.timestampsMs[i], t0 + i);
    if (i === 500) {
      assert.ok(Number.isNaN(history.values[i]));
    } else {
      assert.equal(history.values[i], Math.sin(i) * 1e3);
    }
  }
});

test("a refused batch surfaces from flush", async () => {
  const streamer = client.metricStreamer();
  streamer.log("0123456789abcdef0123456789abcdef", "loss", 1, 1);
  await assert.rejects(streamer.close(), (err: unknown) => {
    assert.ok(err instanceof AggregateError);
    assert.ok(err.errors[0] instanceof NotFoundError);
    return true;
  });
});

test("artifact upload and download, byte-identical", async () => {
  const runId = (await client.createRun()).info!.runId;
  const data = randomBytes(3 * 1024 * 1024 + 12_345);
  const file = await client.uploadArtifact(runId, "model/weights.bin", data);
  assert.equal(file.size, data.length);
  assert.equal(file.sha256, createHash("sha256").update(data).digest("hex"));

  // An async iterable source, in uneven pieces.
  async function* pieces(): AsyncGenerator<Uint8Array> {
    for (let at = 0; at < data.length; at += 700_001) {
      yield data.subarray(at, at + 700_001);
    }
  }
  await client.uploadArtifact(runId, "copy.bin", pieces());
  assert.ok((await client.downloadArtifactBytes(runId, "model/weights.bin")).equals(data));
  assert.ok((await client.downloadArtifactBytes(runId, "copy.bin")).equals(data));
  const files = await client.listArtifacts(runId, "", true);
  assert.deepEqual(files.map((f) => f.path).sort(), ["copy.bin", "model/weights.bin"]);
  await assert.rejects(client.downloadArtifactBytes(runId, "missing.bin"), NotFoundError);
  await assert.rejects(client.uploadArtifact(runId, "short.bin", data.subarray(0, 10), { size: 11 }), InvalidArgumentError);
});

test("model version by alias", async () => {
  const runId = (await client.createRun()).info!.runId;
  const name = unique("ts-model");
  await client.createRegisteredModel(name, "from TypeScript");
  const v1 = await client.createModelVersion(name, `runs:/${runId}/model`);
  const v2 = await client.createModelVersion(name, `runs:/${runId}/model`);
  assert.deepEqual([v1.version, v2.version], [1, 2]);
  await client.setRegisteredModelAlias(name, "champion", 2);
  const mv = await client.getModelVersionByAlias(name, "champion");
  assert.equal(mv.version, 2);
  assert.equal(mv.runId, runId);
  await assert.rejects(client.getModelVersionByAlias(name, "nobody"), NotFoundError);
});

test("watchRun yields existing and new points until aborted", async () => {
  const runId = (await client.createRun()).info!.runId;
  await client.logBatch(runId, { metrics: [{ key: "acc", value: 0.5, step: 1, timestampMs: 0 }] });
  const abort = new AbortController();
  const seen: number[] = [];
  for await (const series of client.watchRun(runId, { keys: ["acc"], startStep: 0, signal: abort.signal })) {
    seen.push(...series.steps);
    if (seen.length === 1) {
      // Committed after the watch started: it must arrive too.
      await client.logBatch(runId, { metrics: [{ key: "acc", value: 0.75, step: 2, timestampMs: 0 }] });
    }
    if (seen.length >= 2) {
      abort.abort();
    }
  }
  assert.deepEqual(seen, [1, 2]);
  await assert.rejects(async () => {
    for await (const _ of client.watchRun("0123456789abcdef0123456789abcdef")) {
      // unreachable: the server refuses an unknown run
    }
  }, NotFoundError);
});
