package org.tracklane.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.tracklane.v1.Experiment;
import org.tracklane.v1.FileInfo;
import org.tracklane.v1.MetricSeries;
import org.tracklane.v1.ModelVersion;
import org.tracklane.v1.Run;
import org.tracklane.v1.RunInfo;
import org.tracklane.v1.RunStatus;

class TracklaneClientTest {
  private static TestServer server;
  private static TracklaneClient client;

  @BeforeAll
  static void start() throws Exception {
    server = TestServer.start();
    client = TracklaneClient.builder().target(server.address).build();
  }

  @AfterAll
  static void stop() throws Exception {
    if (client != null) {
      client.close();
    }
    if (server != null) {
      server.close();
    }
  }

  private static String unique(String prefix) {
    return prefix + "-" + System.nanoTime();
  }

  @Test
  void experimentsRunsParamsTagsAndTypedErrors() {
    String name = unique("java-exp");
    Experiment exp = client.createExperiment(name, Map.of("team", "java"));
    assertThrows(TracklaneException.AlreadyExists.class, () -> client.createExperiment(name));
    assertEquals(exp.getExperimentId(), client.getExperimentByName(name).getExperimentId());

    String runId = client.createRun(exp.getExperimentId(), "baseline").getInfo().getRunId();
    client.logParams(runId, Map.of("lr", "0.01", "layers", "3"));
    client.setTags(runId, Map.of("stage", "dev"));
    var err = assertThrows(TracklaneException.InvalidArgument.class,
        () -> client.logParams(runId, Map.of("lr", "0.02")));
    assertFalse(err.field().isEmpty(), "the error names the field");

    Run run = client.getRun(runId);
    Map<String, String> params = new TreeMap<>();
    run.getData().getParamsList().forEach(p -> params.put(p.getKey(), p.getValue()));
    assertEquals(Map.of("lr", "0.01", "layers", "3"), params);
    assertTrue(run.getData().getTagsList().stream().anyMatch(t -> t.getKey().equals("stage") && t.getValue().equals("dev")));

    List<String> found = new ArrayList<>();
    client.searchRuns(List.of(exp.getExperimentId()), "params.lr = '0.01'").forEach(r -> found.add(r.getInfo().getRunId()));
    assertEquals(List.of(runId), found);

    RunInfo info = client.endRun(runId, RunStatus.RUN_STATUS_FINISHED);
    assertEquals(RunStatus.RUN_STATUS_FINISHED, info.getStatus());
    assertTrue(info.hasEndTime());
    assertThrows(TracklaneException.NotFound.class, () -> client.getRun("0123456789abcdef0123456789abcdef"));
  }

  @Test
  void streams100kPointsAndReadsThemBackExactly() {
    String runId = client.createRun("", "").getInfo().getRunId();
    int n = 100_000;
    long t0 = 1_700_000_000_000L;
    MetricStreamer streamer = client.metricStreamer(MetricStreamer.Options.defaults().batchPoints(7_000).window(4));
    try (streamer) {
      for (int i = 0; i < n; i++) {
        streamer.log(runId, "loss", i == 500 ? Double.NaN : Math.sin(i) * 1e3, i, t0 + i);
      }
    }
    assertEquals(new MetricStreamer.Stats(n, n, n), streamer.stats());
    assertThrows(IllegalStateException.class, () -> streamer.log(runId, "loss", 1, 1));

    MetricSeries h = client.getMetricHistory(runId, "loss");
    assertEquals(n, h.getStepsCount());
    for (int i = 0; i < n; i++) {
      assertEquals(i, h.getSteps(i));
      assertEquals(t0 + i, h.getTimestampsMs(i));
      if (i == 500) {
        assertTrue(Double.isNaN(h.getValues(i)));
      } else {
        assertEquals(Math.sin(i) * 1e3, h.getValues(i));
      }
    }
  }

  @Test
  void refusedBatchSurfacesFromClose() {
    MetricStreamer streamer = client.metricStreamer();
    streamer.log("0123456789abcdef0123456789abcdef", "loss", 1, 1);
    assertThrows(TracklaneException.NotFound.class, streamer::close);
  }

  @Test
  void artifactUploadAndDownloadByteIdentical() throws Exception {
    String runId = client.createRun("", "").getInfo().getRunId();
    byte[] data = new byte[3 * 1024 * 1024 + 12_345];
    new Random(7).nextBytes(data);
    FileInfo info = client.uploadArtifact(runId, "model/weights.bin", new ByteArrayInputStream(data), data.length);
    assertEquals(data.length, info.getSize());
    assertEquals(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data)), info.getSha256());

    ByteArrayOutputStream out = new ByteArrayOutputStream();
    assertEquals(data.length, client.downloadArtifact(runId, "model/weights.bin", out));
    assertArrayEquals(data, out.toByteArray());
    assertEquals(List.of("model/weights.bin"),
        client.listArtifacts(runId, "", true).stream().map(FileInfo::getPath).toList());
    assertThrows(TracklaneException.NotFound.class,
        () -> client.downloadArtifact(runId, "missing.bin", new ByteArrayOutputStream()));
    assertThrows(TracklaneException.InvalidArgument.class,
        () -> client.uploadArtifact(runId, "short.bin", new ByteArrayInputStream(data, 0, 10), 11));
  }

  @Test
  void modelVersionByAlias() {
    String runId = client.createRun("", "").getInfo().getRunId();
    String name = unique("java-model");
    client.createRegisteredModel(name, "from Java");
    ModelVersion v1 = client.createModelVersion(name, "runs:/" + runId + "/model");
    ModelVersion v2 = client.createModelVersion(name, "runs:/" + runId + "/model");
    assertEquals(List.of(1L, 2L), List.of(v1.getVersion(), v2.getVersion()));
    client.setRegisteredModelAlias(name, "champion", 2);
    ModelVersion mv = client.getModelVersionByAlias(name, "champion");
    assertEquals(2, mv.getVersion());
    assertEquals(runId, mv.getRunId());
    var err = assertThrows(TracklaneException.class, () -> client.getModelVersionByAlias(name, "nobody"));
    assertInstanceOf(TracklaneException.NotFound.class, err);
  }
}
