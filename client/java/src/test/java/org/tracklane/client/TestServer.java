package org.tracklane.client;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Comparator;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A real Tracklane server for the tests: $TRACKLANE_TEST_SERVER_URI when set, else
 * {@code python3 -m tracklane_server server} (system property tracklane.python) on a free loopback
 * port with a scratch data folder.
 */
final class TestServer implements AutoCloseable {
  final String address;
  private final Process process;
  private final Path dataDir;

  private TestServer(String address, Process process, Path dataDir) {
    this.address = address;
    this.process = process;
    this.dataDir = dataDir;
  }

  static TestServer start() throws Exception {
    String given = System.getenv("TRACKLANE_TEST_SERVER_URI");
    if (given != null && !given.isEmpty()) {
      return new TestServer(given, null, null);
    }
    return launch(freePort(), Files.createTempDirectory("tracklane-java-test-"));
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  /** A server on {@code port} over {@code dataDir}, once it listens (60 s at most). */
  static TestServer launch(int port, Path dataDir) throws Exception {
    return launch(port, dataDir, java.util.Map.of());
  }

  /** As {@link #launch(int, Path)}, with extra environment variables (e.g. TRACKLANE_AUTH). */
  static TestServer launch(int port, Path dataDir, java.util.Map<String, String> env) throws Exception {
    Path repo = Paths.get(System.getProperty("tracklane.repo", "../..")).toAbsolutePath().normalize();
    String python = System.getProperty("tracklane.python", "python3");
    ProcessBuilder pb = new ProcessBuilder(python, "-m", "tracklane_server", "server",
        "--bind", "127.0.0.1:" + port, "--http-bind", "none", "--data-dir", dataDir.toString(), "--log-level", "WARNING").inheritIO();
    // The server package imports from the repository when it is not installed.
    pb.environment().merge("PYTHONPATH", repo.resolve("server") + java.io.File.pathSeparator
        + repo.resolve("client/python"), (a, b) -> b + java.io.File.pathSeparator + a);
    pb.environment().putAll(env);
    Process p = pb.start();
    TestServer server = new TestServer("127.0.0.1:" + port, p, dataDir);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (System.nanoTime() < deadline) {
      if (!p.isAlive()) {
        server.close();
        throw new IllegalStateException("the server exited with " + p.exitValue() + " before listening");
      }
      try (Socket s = new Socket()) {
        s.connect(new InetSocketAddress("127.0.0.1", port), 1000);
        return server;
      } catch (IOException notYet) {
        Thread.sleep(100);
      }
    }
    server.close();
    throw new IllegalStateException("the server did not listen on port " + port + " within 60 s");
  }

  /** kill -9: no goodbye to the clients; the data folder stays for a restart. */
  void kill() throws InterruptedException {
    process.destroyForcibly().waitFor();
  }

  @Override
  public void close() throws Exception {
    if (process == null) {
      return;
    }
    process.destroy(); // SIGTERM: graceful stop
    if (!process.waitFor(15, TimeUnit.SECONDS)) {
      process.destroyForcibly().waitFor();
    }
    try (Stream<Path> files = Files.walk(dataDir)) {
      files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
    }
  }
}
