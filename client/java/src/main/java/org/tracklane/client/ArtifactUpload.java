package org.tracklane.client;

import com.google.protobuf.ByteString;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.io.IOException;
import java.io.InputStream;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.tracklane.v1.ArtifactServiceGrpc;
import org.tracklane.v1.FileInfo;
import org.tracklane.v1.UploadArtifactRequest;
import org.tracklane.v1.UploadArtifactResponse;
import org.tracklane.v1.UploadHeader;

/** A client-streaming upload that writes only when the transport is ready (gRPC flow control). */
final class ArtifactUpload implements ClientResponseObserver<UploadArtifactRequest, UploadArtifactResponse> {
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition ready = lock.newCondition();
  private final CompletableFuture<UploadArtifactResponse> result = new CompletableFuture<>();
  private ClientCallStreamObserver<UploadArtifactRequest> requests;

  static FileInfo upload(ArtifactServiceGrpc.ArtifactServiceStub stub, String runId, String path, InputStream in,
      long size) throws IOException {
    ArtifactUpload up = new ArtifactUpload();
    stub.uploadArtifact(up);
    UploadHeader.Builder header = UploadHeader.newBuilder().setRunId(runId).setPath(path);
    if (size >= 0) {
      header.setSize(size);
    }
    try {
      up.send(UploadArtifactRequest.newBuilder().setHeader(header).build());
      byte[] buf = new byte[TracklaneClient.CHUNK_BYTES];
      int n;
      while ((n = in.readNBytes(buf, 0, buf.length)) > 0) {
        up.send(UploadArtifactRequest.newBuilder().setChunk(ByteString.copyFrom(buf, 0, n)).build());
      }
    } catch (IOException | RuntimeException e) {
      up.requests.cancel("upload abandoned", e); // the server stores nothing
      throw e;
    }
    up.requests.onCompleted();
    try {
      return up.result.get().getFile();
    } catch (ExecutionException e) {
      throw TracklaneException.from((RuntimeException) e.getCause());
    } catch (InterruptedException e) {
      up.requests.cancel("interrupted", e);
      Thread.currentThread().interrupt();
      throw new IOException("upload interrupted", e);
    }
  }

  private void send(UploadArtifactRequest req) {
    lock.lock();
    try {
      while (!requests.isReady() && !result.isDone()) {
        ready.awaitUninterruptibly();
      }
    } finally {
      lock.unlock();
    }
    if (result.isDone()) {
      // The server already answered (a refusal): surface it instead of writing into a closed call.
      try {
        result.join();
      } catch (java.util.concurrent.CompletionException e) {
        throw TracklaneException.from((RuntimeException) e.getCause());
      }
      throw new IllegalStateException("the server ended the upload early");
    }
    requests.onNext(req);
  }

  private void signal() {
    lock.lock();
    try {
      ready.signalAll();
    } finally {
      lock.unlock();
    }
  }

  @Override
  public void beforeStart(ClientCallStreamObserver<UploadArtifactRequest> requests) {
    this.requests = requests;
    requests.setOnReadyHandler(this::signal);
  }

  @Override
  public void onNext(UploadArtifactResponse value) {
    result.complete(value);
  }

  @Override
  public void onError(Throwable t) {
    result.completeExceptionally(t);
    signal();
  }

  @Override
  public void onCompleted() {
    signal();
  }
}
