package org.tracklane.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.grpc.Status;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.DisabledIfEnvironmentVariable;

/**
 * With auth on: the right token works for calls and streams; a wrong one is refused at once, by
 * unary calls and by the streamer, which must not retry a refusal forever.
 */
@DisabledIfEnvironmentVariable(named = "TRACKLANE_TEST_SERVER_URI", matches = ".+",
    disabledReason = "needs a server of its own with auth on")
class AuthTest {
  static final String BOOTSTRAP = "tlk_java-test-bootstrap-token-0123456789abcdef";

  @Test
  void aWrongTokenIsRefusedByCallsAndStreams() throws Exception {
    Path dataDir = Files.createTempDirectory("tracklane-java-auth-");
    try (TestServer server = TestServer.launch(TestServer.freePort(), dataDir,
            Map.of("TRACKLANE_AUTH", "true", "TRACKLANE_AUTH_BOOTSTRAP_TOKEN", BOOTSTRAP));
        TracklaneClient admin = TracklaneClient.builder().target(server.address).token(BOOTSTRAP).build();
        TracklaneClient intruder = TracklaneClient.builder().target(server.address).token("tlk_wrong").build()) {
      String experimentId = admin.createExperiment("java-auth").getExperimentId();
      String runId = admin.createRun(experimentId, "").getInfo().getRunId();
      try (MetricStreamer streamer = admin.metricStreamer(MetricStreamer.Options.defaults())) {
        for (int i = 0; i < 1_000; i++) {
          streamer.log(runId, "loss", i, i);
        }
      }
      assertEquals(1_000, admin.getMetricHistory(runId, "loss").getStepsCount());

      TracklaneException call = assertThrows(TracklaneException.class, () -> intruder.getExperiment(experimentId));
      assertEquals(Status.Code.UNAUTHENTICATED, call.code());
      MetricStreamer refused = intruder.metricStreamer(MetricStreamer.Options.defaults());
      refused.log(runId, "loss", 1, 5_000);
      // The refusal itself, well before the timeout (which would be UNAVAILABLE).
      TracklaneException stream = assertThrows(TracklaneException.class, () -> refused.flush(Duration.ofSeconds(30)));
      assertEquals(Status.Code.UNAUTHENTICATED, stream.code());
      refused.close();
      assertEquals(1_000, admin.getMetricHistory(runId, "loss").getStepsCount());
    }
  }
}
