import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { TracklaneClient, UnavailableError } from "../src/index.js";
import { freeLoopbackPort, launch } from "./server.js";

// The server is killed (-9) with batches in flight and started again on the same port and data:
// the streamer reconnects, replays its window, and every point is stored exactly once.
test("the streamer replays its window across a server restart", { skip: !!process.env.TRACKLANE_TEST_SERVER_URI }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "tracklane-ts-restart-"));
  const port = await freeLoopbackPort();
  let server = await launch(port, dataDir);
  const client = await TracklaneClient.connect(server.address);
  try {
    const runId = (await client.createRun()).info!.runId;
    const streamer = client.metricStreamer({ batchPoints: 1_000, window: 16 });
    const half = 50_000;
    for (let i = 0; i < half; i++) {
      streamer.log(runId, "acc", i, i);
    }
    await server.kill();
    for (let i = half; i < 2 * half; i++) {
      streamer.log(runId, "acc", i, i); // buffered while the server is away
    }
    await assert.rejects(streamer.flush({ timeoutMs: 300 }), UnavailableError);
    server = await launch(port, dataDir);
    await streamer.close({ timeoutMs: 60_000 });
    const history = await client.getMetricHistory(runId, "acc");
    assert.equal(history.steps.length, 2 * half);
    history.steps.forEach((step, i) => {
      assert.equal(step, i);
      assert.equal(history.values[i], i);
    });
    assert.equal(streamer.stats.acked, 2 * half);
  } finally {
    client.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
