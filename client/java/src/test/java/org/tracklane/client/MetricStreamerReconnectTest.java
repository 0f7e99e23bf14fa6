package org.tracklane.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.DisabledIfEnvironmentVariable;
import org.tracklane.v1.MetricSeries;

/**
 * The server is killed (-9) with batches in flight and started again on the same port and data: the
 * streamer reconnects, replays its window, and every point is stored exactly once.
 */
@DisabledIfEnvironmentVariable(named = "TRACKLANE_TEST_SERVER_URI", matches = ".+",
    disabledReason = "needs a server of its own to kill")
class MetricStreamerReconnectTest {
  @Test
  void replaysItsWindowAcrossAServerRestart() throws Exception {
    Path dataDir = Files.createTempDirectory("tracklane-java-restart-");
    int port = TestServer.freePort();
    TestServer server = TestServer.launch(port, dataDir);
    try (TracklaneClient client = TracklaneClient.builder().target(server.address).build()) {
      String runId = client.createRun("", "").getInfo().getRunId();
      int half = 50_000;
      MetricStreamer streamer = client.metricStreamer(MetricStreamer.Options.defaults().batchPoints(1_000).window(16));
      for (int i = 0; i < half; i++) {
        streamer.log(runId, "acc", i, i);
      }
      server.kill();
      for (int i = half; i < 2 * half; i++) {
        streamer.log(runId, "acc", i, i); // buffered while the server is away
      }
      assertThrows(TracklaneException.Unavailable.class, () -> streamer.flush(Duration.ofMillis(300)));
      server = TestServer.launch(port, dataDir);
      streamer.close();
      assertEquals(2L * half, streamer.stats().acked());
      MetricSeries h = client.getMetricHistory(runId, "acc");
      assertEquals(2 * half, h.getStepsCount());
      for (int i = 0; i < 2 * half; i++) {
        assertEquals(i, h.getSteps(i));
        assertEquals(i, h.getValues(i));
      }
    } finally {
      server.close(); // stops the restarted server and removes the data folder
    }
  }
}
