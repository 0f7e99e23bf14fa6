package org.tracklane.client;

import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Drives the Java client from tests/e2e/test_polyglot.py:
 * {@code download HOST:PORT RUN_ID ARTIFACT_PATH LOCAL_FILE}; prints {@code {"bytes": N}}.
 */
public final class PolyglotCli {
  private PolyglotCli() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 5 || !args[0].equals("download")) {
      System.err.println("usage: PolyglotCli download HOST:PORT RUN_ID ARTIFACT_PATH LOCAL_FILE");
      System.exit(2);
    }
    try (TracklaneClient client = TracklaneClient.builder().target(args[1]).build();
        OutputStream out = Files.newOutputStream(Path.of(args[4]))) {
      long n = client.downloadArtifact(args[2], args[3], out);
      System.out.println("{\"bytes\": " + n + "}");
    }
  }
}
