package tracklane

import (
	"context"
	"errors"
	"io"

	pb "example.com/tracklane/client/go/tracklanev1"
)

// chunkBytes is the upload chunk size: the server takes 1-4 MiB per message.
const chunkBytes = 1 << 20

// UploadArtifact stores the bytes of r at path under the run's artifact root. The file becomes
// visible only once complete; size is checked by the server when known (pass -1 when not).
func (c *Client) UploadArtifact(ctx context.Context, runID, path string, r io.Reader, size int64) (*pb.FileInfo, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // on an early return the server sees a cancelled call and stores nothing
	stream, err := c.artifacts.UploadArtifact(ctx)
	if err != nil {
		return nil, wrap(err)
	}
	header := &pb.UploadHeader{RunId: runID, Path: path}
	if size >= 0 {
		header.Size = &size
	}
	send := func(req *pb.UploadArtifactRequest) error {
		if err := stream.Send(req); err != nil {
			// io.EOF: the server ended the call; its status comes from CloseAndRecv.
			if errors.Is(err, io.EOF) {
				_, err = stream.CloseAndRecv()
			}
			return wrap(err)
		}
		return nil
	}
	if err := send(&pb.UploadArtifactRequest{Payload: &pb.UploadArtifactRequest_Header{Header: header}}); err != nil {
		return nil, err
	}
	buf := make([]byte, chunkBytes)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			// Send keeps a reference until the message is encoded: give it its own slice.
			chunk := append([]byte(nil), buf[:n]...)
			if err := send(&pb.UploadArtifactRequest{Payload: &pb.UploadArtifactRequest_Chunk{Chunk: chunk}}); err != nil {
				return nil, err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return nil, rerr
		}
	}
	resp, err := stream.CloseAndRecv()
	return resp.GetFile(), wrap(err)
}

// DownloadArtifact writes the file's bytes to w and returns how many were written.
func (c *Client) DownloadArtifact(ctx context.Context, runID, path string, w io.Writer) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.artifacts.DownloadArtifact(ctx, &pb.DownloadArtifactRequest{RunId: runID, Path: path})
	if err != nil {
		return 0, wrap(err)
	}
	var written int64
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return written, nil
		}
		if err != nil {
			return written, wrap(err)
		}
		n, err := w.Write(resp.GetChunk())
		written += int64(n)
		if err != nil {
			return written, err
		}
	}
}

// ListArtifacts lists files and folders under path ("" for the root); recursive lists files only.
func (c *Client) ListArtifacts(ctx context.Context, runID, path string, recursive bool) ([]*pb.FileInfo, error) {
	req := &pb.ListArtifactsRequest{RunId: runID, Path: path, Recursive: recursive}
	var out []*pb.FileInfo
	for {
		resp, err := c.artifacts.ListArtifacts(ctx, req)
		if err != nil {
			return nil, wrap(err)
		}
		out = append(out, resp.GetFiles()...)
		if resp.GetNextPageToken() == "" {
			return out, nil
		}
		req.PageToken = resp.GetNextPageToken()
	}
}
