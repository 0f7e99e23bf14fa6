import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { TracklaneClient, UnauthenticatedError } from "../src/index.js";
import { freeLoopbackPort, launch } from "./server.js";

const BOOTSTRAP = "tlk_ts-test-bootstrap-token-0123456789abcdef";

// With auth on: the right token works for calls and streams; a wrong one is refused at once, by
// unary calls and by the streamer, which must not retry a refusal forever.
test("tokens: accepted, and a wrong one refused by calls and streams", { skip: !!process.env.TRACKLANE_TEST_SERVER_URI }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "tracklane-ts-auth-"));
  const server = await launch(await freeLoopbackPort(), dataDir, {
    TRACKLANE_AUTH: "true",
    TRACKLANE_AUTH_BOOTSTRAP_TOKEN: BOOTSTRAP,
  });
  const admin = await TracklaneClient.connect(server.address, { token: BOOTSTRAP });
  const intruder = await TracklaneClient.connect(server.address, { token: "tlk_wrong" });
  try {
    const experimentId = (await admin.createExperiment("ts-auth")).experimentId;
    const runId = (await admin.createRun({ experimentId })).info!.runId;
    const streamer = admin.metricStreamer();
    for (let i = 0; i < 1_000; i++) {
      streamer.log(runId, "loss", i, i);
    }
    await streamer.close({ timeoutMs: 60_000 });
    assert.equal((await admin.getMetricHistory(runId, "loss")).steps.length, 1_000);

    await assert.rejects(intruder.getExperiment(experimentId), UnauthenticatedError);
    const refused = intruder.metricStreamer();
    refused.log(runId, "loss", 1, 5_000);
    // Rejected with the refusal, well before the timeout (which would be an UnavailableError).
    await assert.rejects(refused.close({ timeoutMs: 30_000 }), (err: AggregateError) =>
      err.errors.length === 1 && err.errors[0] instanceof UnauthenticatedError);
    assert.equal((await admin.getMetricHistory(runId, "loss")).steps.length, 1_000);
  } finally {
    admin.close();
    intruder.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
