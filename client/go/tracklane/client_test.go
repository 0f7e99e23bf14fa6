package tracklane_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"example.com/tracklane/client/go/tracklane"
	pb "example.com/tracklane/client/go/tracklanev1"
)

func TestExperimentRunParamsTags(t *testing.T) {
	ctx, c := newClient(t)
	name := unique("go-exp")
	exp, err := c.CreateExperiment(ctx, name, &pb.Tag{Key: "team", Value: "go"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateExperiment(ctx, name); !errors.Is(err, tracklane.ErrAlreadyExists) {
		t.Fatalf("second CreateExperiment: want ErrAlreadyExists, got %v", err)
	}
	got, err := c.GetExperimentByName(ctx, name)
	if err != nil || got.GetExperimentId() != exp.GetExperimentId() {
		t.Fatalf("GetExperimentByName = %v, %v", got, err)
	}
	run, err := c.CreateRun(ctx, exp.GetExperimentId(), "baseline")
	if err != nil {
		t.Fatal(err)
	}
	runID := run.GetInfo().GetRunId()
	if err := c.LogParams(ctx, runID, map[string]string{"lr": "0.01", "layers": "3"}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetTags(ctx, runID, map[string]string{"stage": "dev"}); err != nil {
		t.Fatal(err)
	}
	err = c.LogParams(ctx, runID, map[string]string{"lr": "0.02"})
	if !errors.Is(err, tracklane.ErrInvalidArgument) {
		t.Fatalf("changing a param: want ErrInvalidArgument, got %v", err)
	}
	var terr *tracklane.Error
	if !errors.As(err, &terr) || terr.Field == "" {
		t.Fatalf("want *tracklane.Error naming the field, got %#v", err)
	}
	run, err = c.GetRun(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]string{}
	for _, p := range run.GetData().GetParams() {
		params[p.GetKey()] = p.GetValue()
	}
	if params["lr"] != "0.01" || params["layers"] != "3" {
		t.Fatalf("params = %v", params)
	}
	tags := map[string]string{}
	for _, tg := range run.GetData().GetTags() {
		tags[tg.GetKey()] = tg.GetValue()
	}
	if tags["stage"] != "dev" {
		t.Fatalf("tags = %v", tags)
	}
	var found []string
	for r, err := range c.SearchRuns(ctx, []string{exp.GetExperimentId()}, tracklane.SearchRunsOptions{Filter: "params.lr = '0.01'"}) {
		if err != nil {
			t.Fatal(err)
		}
		found = append(found, r.GetInfo().GetRunId())
	}
	if len(found) != 1 || found[0] != runID {
		t.Fatalf("SearchRuns = %v, want [%s]", found, runID)
	}
	info, err := c.EndRun(ctx, runID, pb.RunStatus_RUN_STATUS_FINISHED)
	if err != nil || info.GetStatus() != pb.RunStatus_RUN_STATUS_FINISHED || info.GetEndTime() == nil {
		t.Fatalf("EndRun = %v, %v", info, err)
	}
	if _, err := c.GetRun(ctx, "0123456789abcdef0123456789abcdef"); !errors.Is(err, tracklane.ErrNotFound) {
		t.Fatalf("unknown run: want ErrNotFound, got %v", err)
	}
}

func TestStream100kPointsReadBackExactly(t *testing.T) {
	ctx, c := newClient(t)
	run, err := c.CreateRun(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	runID := run.GetInfo().GetRunId()
	const n = 100_000
	base := time.UnixMilli(1_700_000_000_000)
	s := c.NewStreamer(tracklane.WithBatchPoints(7_000), tracklane.WithWindow(4))
	for i := range n {
		v := math.Sin(float64(i)) * 1e3
		if i == 500 {
			v = math.NaN()
		}
		if err := s.LogAt(runID, "loss", v, int64(i), base.Add(time.Duration(i)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Logged != n || st.Acked != n || st.Written != n {
		t.Fatalf("stats = %+v", st)
	}
	if err := s.Log(runID, "loss", 1, 1); !errors.Is(err, tracklane.ErrStreamerClosed) {
		t.Fatalf("Log after Close: %v", err)
	}
	h, err := c.GetMetricHistory(ctx, runID, "loss")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.GetSteps()) != n {
		t.Fatalf("history has %d points, want %d", len(h.GetSteps()), n)
	}
	for i := range n {
		want := math.Sin(float64(i)) * 1e3
		got := h.GetValues()[i]
		if h.GetSteps()[i] != int64(i) || h.GetTimestampsMs()[i] != base.UnixMilli()+int64(i) {
			t.Fatalf("point %d: step %d ts %d", i, h.GetSteps()[i], h.GetTimestampsMs()[i])
		}
		if i == 500 {
			if !math.IsNaN(got) {
				t.Fatalf("point 500 = %v, want NaN", got)
			}
		} else if got != want {
			t.Fatalf("point %d = %v, want %v", i, got, want)
		}
	}
}

func TestStreamerReportsRefusedBatches(t *testing.T) {
	ctx, c := newClient(t)
	s := c.NewStreamer()
	if err := s.Log("0123456789abcdef0123456789abcdef", "loss", 1, 1); err != nil {
		t.Fatal(err)
	}
	err := s.Close(ctx)
	if !errors.Is(err, tracklane.ErrNotFound) {
		t.Fatalf("unknown run: want ErrNotFound from Close, got %v", err)
	}
}

func TestArtifactRoundTrip(t *testing.T) {
	ctx, c := newClient(t)
	run, err := c.CreateRun(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	runID := run.GetInfo().GetRunId()
	data := make([]byte, 3<<20+12345) // several chunks and a partial one
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	info, err := c.UploadArtifact(ctx, runID, "model/weights.bin", bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if info.GetSize() != int64(len(data)) || info.GetSha256() != hex.EncodeToString(sum[:]) {
		t.Fatalf("uploaded file info = %v", info)
	}
	var out bytes.Buffer
	n, err := c.DownloadArtifact(ctx, runID, "model/weights.bin", &out)
	if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("download: n=%d err=%v equal=%v", n, err, bytes.Equal(out.Bytes(), data))
	}
	files, err := c.ListArtifacts(ctx, runID, "", true)
	if err != nil || len(files) != 1 || files[0].GetPath() != "model/weights.bin" {
		t.Fatalf("ListArtifacts = %v, %v", files, err)
	}
	if _, err := c.DownloadArtifact(ctx, runID, "missing.bin", &out); !errors.Is(err, tracklane.ErrNotFound) {
		t.Fatalf("missing file: want ErrNotFound, got %v", err)
	}
	// A size that does not match what arrives stores nothing.
	_, err = c.UploadArtifact(ctx, runID, "short.bin", bytes.NewReader(data[:10]), 11)
	if !errors.Is(err, tracklane.ErrInvalidArgument) {
		t.Fatalf("size mismatch: want ErrInvalidArgument, got %v", err)
	}
}

func TestModelVersionByAlias(t *testing.T) {
	ctx, c := newClient(t)
	run, err := c.CreateRun(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	runID := run.GetInfo().GetRunId()
	name := unique("go-model")
	if _, err := c.CreateRegisteredModel(ctx, name, "from Go"); err != nil {
		t.Fatal(err)
	}
	v1, err := c.CreateModelVersion(ctx, name, "runs:/"+runID+"/model", "")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := c.CreateModelVersion(ctx, name, "runs:/"+runID+"/model", "")
	if err != nil || v1.GetVersion() != 1 || v2.GetVersion() != 2 {
		t.Fatalf("versions %v %v, %v", v1.GetVersion(), v2.GetVersion(), err)
	}
	if err := c.SetRegisteredModelAlias(ctx, name, "champion", 1); err != nil {
		t.Fatal(err)
	}
	mv, err := c.GetModelVersionByAlias(ctx, name, "champion")
	if err != nil || mv.GetVersion() != 1 || mv.GetRunId() != runID {
		t.Fatalf("by alias = %v, %v", mv, err)
	}
	if _, err := c.GetModelVersionByAlias(ctx, name, "nobody"); !errors.Is(err, tracklane.ErrNotFound) {
		t.Fatalf("unknown alias: want ErrNotFound, got %v", err)
	}
}

func TestErrorsMatchContextAndCodes(t *testing.T) {
	ctx, c := newClient(t)
	expired, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	<-expired.Done()
	_, err := c.GetRun(expired, "0123456789abcdef0123456789abcdef")
	if !errors.Is(err, context.DeadlineExceeded) || tracklane.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("expired context: got %v", err)
	}
	_, err = c.GetExperiment(ctx, "999999999")
	if !errors.Is(err, tracklane.ErrNotFound) || errors.Is(err, tracklane.ErrAlreadyExists) {
		t.Fatalf("unknown experiment: got %v", err)
	}
	if _, err := tracklane.NewClient(ctx, "http://127.0.0.1:1"); err == nil {
		t.Fatal("an http:// address must be refused")
	}
}
