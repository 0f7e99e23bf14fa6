package tracklane

import (
	"context"

	pb "example.com/tracklane/client/go/tracklanev1"
)

// CreateRegisteredModel creates a registered model; ErrAlreadyExists when the name is taken.
func (c *Client) CreateRegisteredModel(ctx context.Context, name, description string) (*pb.RegisteredModel, error) {
	resp, err := c.registry.CreateRegisteredModel(ctx, &pb.CreateRegisteredModelRequest{Name: name, Description: description})
	return resp.GetRegisteredModel(), wrap(err)
}

// CreateModelVersion registers a new version of a model from source (`runs:/<run_id>/<path>` or
// an artifact URI); versions are numbered 1, 2, 3...
func (c *Client) CreateModelVersion(ctx context.Context, name, source, runID string) (*pb.ModelVersion, error) {
	resp, err := c.registry.CreateModelVersion(ctx, &pb.CreateModelVersionRequest{Name: name, Source: source, RunId: runID})
	return resp.GetModelVersion(), wrap(err)
}

// SetRegisteredModelAlias points alias (e.g. "champion") at a version.
func (c *Client) SetRegisteredModelAlias(ctx context.Context, name, alias string, version int64) error {
	_, err := c.registry.SetRegisteredModelAlias(ctx, &pb.SetRegisteredModelAliasRequest{Name: name, Alias: alias, Version: version})
	return wrap(err)
}

// GetModelVersionByAlias reads the version an alias points at; ErrNotFound for an unknown model or alias.
func (c *Client) GetModelVersionByAlias(ctx context.Context, name, alias string) (*pb.ModelVersion, error) {
	resp, err := c.registry.GetModelVersionByAlias(ctx, &pb.GetModelVersionByAliasRequest{Name: name, Alias: alias})
	return resp.GetModelVersion(), wrap(err)
}

// GetModelVersion reads one version.
func (c *Client) GetModelVersion(ctx context.Context, name string, version int64) (*pb.ModelVersion, error) {
	resp, err := c.registry.GetModelVersion(ctx, &pb.GetModelVersionRequest{Name: name, Version: version})
	return resp.GetModelVersion(), wrap(err)
}
