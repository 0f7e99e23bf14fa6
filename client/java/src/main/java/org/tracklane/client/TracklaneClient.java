package org.tracklane.client;

import com.google.protobuf.ByteString;
import com.google.protobuf.FieldMask;
import io.grpc.ChannelCredentials;
import io.grpc.Context;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.TlsChannelCredentials;
import io.grpc.stub.MetadataUtils;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.tracklane.v1.ArtifactServiceGrpc;
import org.tracklane.v1.CreateExperimentRequest;
import org.tracklane.v1.CreateModelVersionRequest;
import org.tracklane.v1.CreateRegisteredModelRequest;
import org.tracklane.v1.CreateRunRequest;
import org.tracklane.v1.DownloadArtifactRequest;
import org.tracklane.v1.DownloadArtifactResponse;
import org.tracklane.v1.Experiment;
import org.tracklane.v1.FileInfo;
import org.tracklane.v1.GetExperimentByNameRequest;
import org.tracklane.v1.GetExperimentRequest;
import org.tracklane.v1.GetMetricHistoryRequest;
import org.tracklane.v1.GetMetricHistoryResponse;
import org.tracklane.v1.GetModelVersionByAliasRequest;
import org.tracklane.v1.GetRunRequest;
import org.tracklane.v1.ListArtifactsRequest;
import org.tracklane.v1.ListArtifactsResponse;
import org.tracklane.v1.LogBatchRequest;
import org.tracklane.v1.Metric;
import org.tracklane.v1.MetricSeries;
import org.tracklane.v1.ModelVersion;
import org.tracklane.v1.Param;
import org.tracklane.v1.RegisteredModel;
import org.tracklane.v1.RegistryServiceGrpc;
import org.tracklane.v1.Run;
import org.tracklane.v1.RunInfo;
import org.tracklane.v1.RunStatus;
import org.tracklane.v1.SearchRunsRequest;
import org.tracklane.v1.SearchRunsResponse;
import org.tracklane.v1.SetRegisteredModelAliasRequest;
import org.tracklane.v1.Tag;
import org.tracklane.v1.TrackingServiceGrpc;
import org.tracklane.v1.UpdateRunRequest;

/**
 * A connection to one Tracklane server: blocking methods for the common calls over the generated
 * grpc-java stubs, typed {@link TracklaneException}s, and {@link MetricStreamer}s. Thread-safe.
 *
 * <pre>{@code
 * try (TracklaneClient client = TracklaneClient.builder().target("127.0.0.1:50051").build()) {
 *   Run run = client.createRun("", "baseline");
 * }
 * }</pre>
 */
public final class TracklaneClient implements AutoCloseable {
  /** Used when no target is given and $TRACKLANE_TRACKING_URI is unset. */
  public static final String DEFAULT_TARGET = "localhost:50051";
  // The server's default message limit: a history page of 1,000,000 points fits.
  static final int MAX_MESSAGE_BYTES = 64 << 20;
  // Upload chunk size: the server takes 1-4 MiB per message.
  static final int CHUNK_BYTES = 1 << 20;

  private final ManagedChannel channel;
  private final TrackingServiceGrpc.TrackingServiceBlockingStub tracking;
  private final TrackingServiceGrpc.TrackingServiceStub trackingAsync;
  private final ArtifactServiceGrpc.ArtifactServiceBlockingStub artifacts;
  private final ArtifactServiceGrpc.ArtifactServiceStub artifactsAsync;
  private final RegistryServiceGrpc.RegistryServiceBlockingStub registry;

  private TracklaneClient(ManagedChannel channel, Metadata headers) {
    this.channel = channel;
    var attach = MetadataUtils.newAttachHeadersInterceptor(headers);
    this.tracking = TrackingServiceGrpc.newBlockingStub(channel).withInterceptors(attach);
    this.trackingAsync = TrackingServiceGrpc.newStub(channel).withInterceptors(attach);
    this.artifacts = ArtifactServiceGrpc.newBlockingStub(channel).withInterceptors(attach);
    this.artifactsAsync = ArtifactServiceGrpc.newStub(channel).withInterceptors(attach);
    this.registry = RegistryServiceGrpc.newBlockingStub(channel).withInterceptors(attach);
  }

  /** A builder; {@code build()} connects lazily, on the first call. */
  public static Builder builder() {
    return new Builder();
  }

  /** Configures a {@link TracklaneClient}. */
  public static final class Builder {
    private String target = "";
    private String user = System.getProperty("user.name", "");
    private ChannelCredentials credentials;
    private final Map<String, String> headers = new LinkedHashMap<>();
    private String token = System.getenv().getOrDefault("TRACKLANE_TRACKING_TOKEN", "");
    private String caFile = System.getenv().getOrDefault("TRACKLANE_TRACKING_CA_FILE", "");
    private String clientCertFile = System.getenv().getOrDefault("TRACKLANE_TRACKING_CLIENT_CERT_FILE", "");
    private String clientKeyFile = System.getenv().getOrDefault("TRACKLANE_TRACKING_CLIENT_KEY_FILE", "");

    private Builder() {}

    /** {@code host:port}, {@code grpc://host:port} or {@code grpcs://host:port}; "" reads $TRACKLANE_TRACKING_URI. */
    public Builder target(String target) {
      this.target = target;
      return this;
    }

    /** Recorded by the server on registry changes; default: the login name. */
    public Builder user(String user) {
      this.user = user;
      return this;
    }

    /** Credentials, e.g. {@code TlsChannelCredentials.create()}; default plaintext (TLS for grpcs://). */
    public Builder credentials(ChannelCredentials credentials) {
      this.credentials = credentials;
      return this;
    }

    /** API token sent as {@code authorization: Bearer ...}; default $TRACKLANE_TRACKING_TOKEN. */
    public Builder token(String token) {
      this.token = token;
      return this;
    }

    /** PEM CA file trusted for grpcs:// instead of the system roots; default $TRACKLANE_TRACKING_CA_FILE. */
    public Builder caFile(String path) {
      this.caFile = path;
      return this;
    }

    /** Client certificate and key (PEM) for servers requiring mTLS; default
     *  $TRACKLANE_TRACKING_CLIENT_CERT_FILE and $TRACKLANE_TRACKING_CLIENT_KEY_FILE. */
    public Builder clientCertificate(String certFile, String keyFile) {
      this.clientCertFile = certFile;
      this.clientKeyFile = keyFile;
      return this;
    }

    /** A metadata header on every call, e.g. {@code header("authorization", "Bearer ...")}. */
    public Builder header(String key, String value) {
      headers.put(key.toLowerCase(java.util.Locale.ROOT), value);
      return this;
    }

    public TracklaneClient build() {
      String raw = target.isEmpty() ? System.getenv().getOrDefault("TRACKLANE_TRACKING_URI", "") : target;
      if (raw.isEmpty()) {
        raw = DEFAULT_TARGET;
      }
      boolean secure = raw.startsWith("grpcs://");
      String hostPort = raw.replaceFirst("^grpcs?://", "").replaceFirst("/$", "");
      if (hostPort.contains("://") || hostPort.isEmpty()) {
        throw new IllegalArgumentException("target " + raw + ": use host:port, grpc:// or grpcs://");
      }
      ChannelCredentials creds = credentials != null ? credentials
          : secure ? tlsCredentials() : InsecureChannelCredentials.create();
      ManagedChannel channel = Grpc.newChannelBuilder(hostPort, creds)
          .maxInboundMessageSize(MAX_MESSAGE_BYTES)
          .build();
      Metadata md = new Metadata();
      if (!user.isEmpty()) {
        md.put(Metadata.Key.of("user", Metadata.ASCII_STRING_MARSHALLER), user);
      }
      if (!token.isEmpty()) {
        md.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token);
      }
      headers.forEach((k, v) -> md.put(Metadata.Key.of(k, Metadata.ASCII_STRING_MARSHALLER), v));
      return new TracklaneClient(channel, md);
    }

    /** TLS trusting the CA file (else the system roots), presenting the client certificate if set. */
    private ChannelCredentials tlsCredentials() {
      var tls = TlsChannelCredentials.newBuilder();
      try {
        if (!caFile.isEmpty()) {
          tls.trustManager(new java.io.File(caFile));
        }
        if (!clientCertFile.isEmpty() || !clientKeyFile.isEmpty()) {
          tls.keyManager(new java.io.File(clientCertFile), new java.io.File(clientKeyFile));
        }
      } catch (IOException e) {
        throw new IllegalArgumentException("TLS files: " + e.getMessage(), e);
      }
      return tls.build();
    }
  }

  /** The generated blocking stubs, for RPCs without a helper (errors: {@link TracklaneException#from}). */
  public TrackingServiceGrpc.TrackingServiceBlockingStub tracking() {
    return tracking;
  }

  public ArtifactServiceGrpc.ArtifactServiceBlockingStub artifacts() {
    return artifacts;
  }

  public RegistryServiceGrpc.RegistryServiceBlockingStub registry() {
    return registry;
  }

  /** Closes the connection, waiting up to 5 s for calls in flight. Close streamers first. */
  @Override
  public void close() {
    channel.shutdown();
    try {
      if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
        channel.shutdownNow();
      }
    } catch (InterruptedException e) {
      channel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }

  private static <T> T call(Supplier<T> rpc) {
    try {
      return rpc.get();
    } catch (RuntimeException e) {
      throw TracklaneException.from(e);
    }
  }

  // --- experiments and runs ---

  /** Creates an experiment; {@link TracklaneException.AlreadyExists} when the name is taken. */
  public Experiment createExperiment(String name, Map<String, String> tags) {
    var req = CreateExperimentRequest.newBuilder().setName(name).addAllTags(tags(tags)).build();
    return call(() -> tracking.createExperiment(req)).getExperiment();
  }

  public Experiment createExperiment(String name) {
    return createExperiment(name, Map.of());
  }

  /** Reads an experiment; {@link TracklaneException.NotFound} when there is none. */
  public Experiment getExperiment(String experimentId) {
    return call(() -> tracking.getExperiment(GetExperimentRequest.newBuilder().setExperimentId(experimentId).build()))
        .getExperiment();
  }

  /** Reads an experiment by exact name; {@link TracklaneException.NotFound} when there is none. */
  public Experiment getExperimentByName(String name) {
    return call(() -> tracking.getExperimentByName(GetExperimentByNameRequest.newBuilder().setName(name).build()))
        .getExperiment();
  }

  /** Starts a run ("" experiment: the default one; "" name: a generated one). */
  public Run createRun(String experimentId, String runName) {
    var req = CreateRunRequest.newBuilder().setExperimentId(experimentId).setRunName(runName).build();
    return call(() -> tracking.createRun(req)).getRun();
  }

  /** Reads a run with its params, tags and latest metrics. */
  public Run getRun(String runId) {
    return call(() -> tracking.getRun(GetRunRequest.newBuilder().setRunId(runId).build())).getRun();
  }

  /** Ends a run with a terminal status, end time now. */
  public RunInfo endRun(String runId, RunStatus status) {
    var req = UpdateRunRequest.newBuilder().setRunId(runId).setStatus(status)
        .setUpdateMask(FieldMask.newBuilder().addPaths("status").addPaths("end_time")).build();
    return call(() -> tracking.updateRun(req)).getRunInfo();
  }

  /** Logs metrics, params and tags in one unary call (limits 10,000 / 1,000 / 1,000). */
  public void logBatch(String runId, List<Metric> metrics, List<Param> params, List<Tag> tags) {
    var req = LogBatchRequest.newBuilder().setRunId(runId)
        .addAllMetrics(metrics).addAllParams(params).addAllTags(tags).build();
    call(() -> tracking.logBatch(req));
  }

  /** Sets params; one already set must keep its value (else {@link TracklaneException.InvalidArgument}). */
  public void logParams(String runId, Map<String, String> params) {
    List<Param> list = new ArrayList<>();
    new TreeMap<>(params).forEach((k, v) -> list.add(Param.newBuilder().setKey(k).setValue(v).build()));
    logBatch(runId, List.of(), list, List.of());
  }

  /** Sets run tags, overwriting existing values. */
  public void setTags(String runId, Map<String, String> tags) {
    logBatch(runId, List.of(), List.of(), tags(tags));
  }

  /** The matching runs, fetched page by page as the iteration goes on. */
  public Iterable<Run> searchRuns(List<String> experimentIds, String filter) {
    return () -> new Iterator<>() {
      private SearchRunsResponse page;
      private int index;

      private boolean fetch() {
        while (page == null || (index >= page.getRunsCount() && !page.getNextPageToken().isEmpty())) {
          var req = SearchRunsRequest.newBuilder().addAllExperimentIds(experimentIds).setFilter(filter)
              .setPageToken(page == null ? "" : page.getNextPageToken()).build();
          page = call(() -> tracking.searchRuns(req));
          index = 0;
        }
        return index < page.getRunsCount();
      }

      @Override
      public boolean hasNext() {
        return fetch();
      }

      @Override
      public Run next() {
        if (!fetch()) {
          throw new NoSuchElementException();
        }
        return page.getRuns(index++);
      }
    };
  }

  /** Every point of one metric in step order, all pages joined into one series. */
  public MetricSeries getMetricHistory(String runId, String key) {
    MetricSeries.Builder out = MetricSeries.newBuilder().setRunId(runId).setKey(key);
    String token = "";
    do {
      var req = GetMetricHistoryRequest.newBuilder().setRunId(runId).setKey(key).setPageToken(token).build();
      GetMetricHistoryResponse resp = call(() -> tracking.getMetricHistory(req));
      out.addAllSteps(resp.getSeries().getStepsList())
          .addAllValues(resp.getSeries().getValuesList())
          .addAllTimestampsMs(resp.getSeries().getTimestampsMsList());
      token = resp.getNextPageToken();
    } while (!token.isEmpty());
    return out.build();
  }

  /** A streamer for many points over one StreamMetrics call; close it to send the rest. */
  public MetricStreamer metricStreamer(MetricStreamer.Options options) {
    return new MetricStreamer(trackingAsync, options);
  }

  public MetricStreamer metricStreamer() {
    return metricStreamer(MetricStreamer.Options.defaults());
  }

  // --- artifacts ---

  /**
   * Stores the bytes of {@code in} at {@code path} under the run's artifact root; visible only once
   * complete. {@code size} (or -1 when unknown) is verified by the server.
   */
  public FileInfo uploadArtifact(String runId, String path, InputStream in, long size) throws IOException {
    return ArtifactUpload.upload(artifactsAsync, runId, path, in, size);
  }

  /** Writes the file's bytes to {@code out}; returns how many. */
  public long downloadArtifact(String runId, String path, OutputStream out) throws IOException {
    // A cancellable context stops the transfer when writing fails half-way.
    Context.CancellableContext ctx = Context.current().withCancellation();
    Context previous = ctx.attach();
    try {
      Iterator<DownloadArtifactResponse> it = artifacts.downloadArtifact(
          DownloadArtifactRequest.newBuilder().setRunId(runId).setPath(path).build());
      long written = 0;
      while (call(it::hasNext)) {
        ByteString chunk = it.next().getChunk();
        chunk.writeTo(out);
        written += chunk.size();
      }
      return written;
    } finally {
      ctx.detach(previous);
      ctx.cancel(null);
    }
  }

  /** Files and folders under {@code path} ("" for the root); recursive lists files only. */
  public List<FileInfo> listArtifacts(String runId, String path, boolean recursive) {
    List<FileInfo> out = new ArrayList<>();
    String token = "";
    do {
      var req = ListArtifactsRequest.newBuilder().setRunId(runId).setPath(path).setRecursive(recursive)
          .setPageToken(token).build();
      ListArtifactsResponse resp = call(() -> artifacts.listArtifacts(req));
      out.addAll(resp.getFilesList());
      token = resp.getNextPageToken();
    } while (!token.isEmpty());
    return out;
  }

  // --- registry ---

  /** Creates a registered model; {@link TracklaneException.AlreadyExists} when the name is taken. */
  public RegisteredModel createRegisteredModel(String name, String description) {
    var req = CreateRegisteredModelRequest.newBuilder().setName(name).setDescription(description).build();
    return call(() -> registry.createRegisteredModel(req)).getRegisteredModel();
  }

  /** Registers a new version from {@code source} ({@code runs:/<run_id>/<path>} or an artifact URI). */
  public ModelVersion createModelVersion(String name, String source) {
    var req = CreateModelVersionRequest.newBuilder().setName(name).setSource(source).build();
    return call(() -> registry.createModelVersion(req)).getModelVersion();
  }

  /** Points {@code alias} (e.g. "champion") at a version. */
  public void setRegisteredModelAlias(String name, String alias, long version) {
    var req = SetRegisteredModelAliasRequest.newBuilder().setName(name).setAlias(alias).setVersion(version).build();
    call(() -> registry.setRegisteredModelAlias(req));
  }

  /** The version an alias points at; {@link TracklaneException.NotFound} for an unknown model or alias. */
  public ModelVersion getModelVersionByAlias(String name, String alias) {
    var req = GetModelVersionByAliasRequest.newBuilder().setName(name).setAlias(alias).build();
    return call(() -> registry.getModelVersionByAlias(req)).getModelVersion();
  }

  static List<Tag> tags(Map<String, String> tags) {
    List<Tag> out = new ArrayList<>();
    new TreeMap<>(tags).forEach((k, v) -> out.add(Tag.newBuilder().setKey(k).setValue(v).build()));
    return out;
  }
}
