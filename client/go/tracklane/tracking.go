package tracklane

import (
	"context"
	"iter"
	"sort"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	pb "example.com/tracklane/client/go/tracklanev1"
)

// CreateExperiment creates an experiment; ErrAlreadyExists when the name is taken.
func (c *Client) CreateExperiment(ctx context.Context, name string, tags ...*pb.Tag) (*pb.Experiment, error) {
	resp, err := c.tracking.CreateExperiment(ctx, &pb.CreateExperimentRequest{Name: name, Tags: tags})
	return resp.GetExperiment(), wrap(err)
}

// GetExperiment reads an experiment by id; ErrNotFound when there is none.
func (c *Client) GetExperiment(ctx context.Context, experimentID string) (*pb.Experiment, error) {
	resp, err := c.tracking.GetExperiment(ctx, &pb.GetExperimentRequest{ExperimentId: experimentID})
	return resp.GetExperiment(), wrap(err)
}

// GetExperimentByName reads an experiment by name; ErrNotFound when there is none.
func (c *Client) GetExperimentByName(ctx context.Context, name string) (*pb.Experiment, error) {
	resp, err := c.tracking.GetExperimentByName(ctx, &pb.GetExperimentByNameRequest{Name: name})
	return resp.GetExperiment(), wrap(err)
}

// CreateRun starts a run in an experiment ("" for the default one); runName "" gets a generated name.
func (c *Client) CreateRun(ctx context.Context, experimentID, runName string, tags ...*pb.Tag) (*pb.Run, error) {
	resp, err := c.tracking.CreateRun(ctx, &pb.CreateRunRequest{ExperimentId: experimentID, RunName: runName, Tags: tags})
	return resp.GetRun(), wrap(err)
}

// GetRun reads a run with its params, tags and latest metrics.
func (c *Client) GetRun(ctx context.Context, runID string) (*pb.Run, error) {
	resp, err := c.tracking.GetRun(ctx, &pb.GetRunRequest{RunId: runID})
	return resp.GetRun(), wrap(err)
}

// EndRun sets a run's terminal status (RUN_STATUS_FINISHED, _FAILED or _KILLED) and end time (now).
func (c *Client) EndRun(ctx context.Context, runID string, status pb.RunStatus) (*pb.RunInfo, error) {
	resp, err := c.tracking.UpdateRun(ctx, &pb.UpdateRunRequest{
		RunId: runID, Status: status, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"status", "end_time"}},
	})
	return resp.GetRunInfo(), wrap(err)
}

// LogParams sets params, in key order; a param already set must keep its value (else ErrInvalidArgument).
func (c *Client) LogParams(ctx context.Context, runID string, params map[string]string) error {
	out := make([]*pb.Param, 0, len(params))
	for _, k := range sortedKeys(params) {
		out = append(out, &pb.Param{Key: k, Value: params[k]})
	}
	return c.LogBatch(ctx, runID, nil, out, nil)
}

// SetTags sets run tags, overwriting existing values.
func (c *Client) SetTags(ctx context.Context, runID string, tags map[string]string) error {
	return c.LogBatch(ctx, runID, nil, nil, Tags(tags))
}

// LogBatch logs metrics, params and tags in one unary call (limits: 10,000 / 1,000 / 1,000).
// For many points, use a Streamer.
func (c *Client) LogBatch(ctx context.Context, runID string, metrics []*pb.Metric, params []*pb.Param, tags []*pb.Tag) error {
	_, err := c.tracking.LogBatch(ctx, &pb.LogBatchRequest{RunId: runID, Metrics: metrics, Params: params, Tags: tags})
	return wrap(err)
}

// SearchRunsOptions narrows SearchRuns; the zero value lists live runs, newest first.
type SearchRunsOptions struct {
	// MLflow's grammar, e.g. `metrics.loss < 0.1 and params.lr = '0.01'`.
	Filter string
	// e.g. []string{"metrics.acc DESC"}.
	OrderBy []string
	// Runs per page (0: server default).
	PageSize int32
}

// SearchRuns yields the matching runs of the experiments, fetching pages as the loop goes on.
// The loop ends at the first error, which is yielded with a nil run.
func (c *Client) SearchRuns(ctx context.Context, experimentIDs []string, opts SearchRunsOptions) iter.Seq2[*pb.Run, error] {
	return func(yield func(*pb.Run, error) bool) {
		req := &pb.SearchRunsRequest{ExperimentIds: experimentIDs, Filter: opts.Filter, OrderBy: opts.OrderBy, PageSize: opts.PageSize}
		for {
			resp, err := c.tracking.SearchRuns(ctx, req)
			if err != nil {
				yield(nil, wrap(err))
				return
			}
			for _, run := range resp.GetRuns() {
				if !yield(run, nil) {
					return
				}
			}
			if resp.GetNextPageToken() == "" {
				return
			}
			req.PageToken = resp.GetNextPageToken()
		}
	}
}

// GetMetricHistory reads every point of one metric, in step order, following page tokens; the
// result is one MetricSeries with packed columns.
func (c *Client) GetMetricHistory(ctx context.Context, runID, key string) (*pb.MetricSeries, error) {
	out := &pb.MetricSeries{RunId: runID, Key: key}
	req := &pb.GetMetricHistoryRequest{RunId: runID, Key: key}
	for {
		resp, err := c.tracking.GetMetricHistory(ctx, req)
		if err != nil {
			return nil, wrap(err)
		}
		s := resp.GetSeries()
		out.Steps = append(out.Steps, s.GetSteps()...)
		out.Values = append(out.Values, s.GetValues()...)
		out.TimestampsMs = append(out.TimestampsMs, s.GetTimestampsMs()...)
		if resp.GetNextPageToken() == "" {
			return out, nil
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// Tags converts a map to tags, in key order.
func Tags(m map[string]string) []*pb.Tag {
	out := make([]*pb.Tag, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, &pb.Tag{Key: k, Value: m[k]})
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
