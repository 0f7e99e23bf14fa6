package tracklane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/user"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pb "example.com/tracklane/client/go/tracklanev1"
)

// DefaultAddress is used when NewClient gets "" and $TRACKLANE_TRACKING_URI is unset.
const DefaultAddress = "localhost:50051"

// maxMessageBytes matches the server's default limit: a page of 1,000,000 history points fits.
const maxMessageBytes = 64 << 20

// Client talks to one Tracklane server over one gRPC connection. It is safe for concurrent use.
type Client struct {
	conn      *grpc.ClientConn
	tracking  pb.TrackingServiceClient
	artifacts pb.ArtifactServiceClient
	registry  pb.RegistryServiceClient
}

type options struct {
	tls        *tls.Config
	dialOpts   []grpc.DialOption
	user       string
	headers    map[string]string
	token      string
	caFile     string
	clientCert string
	clientKey  string
}

// Option configures NewClient.
type Option func(*options)

// WithTLS connects with TLS (the default for grpcs:// addresses uses the system roots).
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithDialOptions adds grpc-go dial options (interceptors, keepalive, per-RPC credentials...).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

// WithUser sets the `user` metadata the server records on registry changes (default: login name).
func WithUser(name string) Option { return func(o *options) { o.user = name } }

// WithToken sends `authorization: Bearer <token>` on every call (default: $TRACKLANE_TRACKING_TOKEN).
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithCAFile trusts the PEM certificates in path for grpcs:// addresses instead of the system roots
// (default: $TRACKLANE_TRACKING_CA_FILE).
func WithCAFile(path string) Option { return func(o *options) { o.caFile = path } }

// WithClientCertificate presents a client certificate, for servers that require mTLS (default:
// $TRACKLANE_TRACKING_CLIENT_CERT_FILE and $TRACKLANE_TRACKING_CLIENT_KEY_FILE).
func WithClientCertificate(certFile, keyFile string) Option {
	return func(o *options) { o.clientCert, o.clientKey = certFile, keyFile }
}

// WithHeader sends a metadata header on every call, e.g. WithHeader("authorization", "Bearer ...").
func WithHeader(key, value string) Option {
	return func(o *options) { o.headers[strings.ToLower(key)] = value }
}

// NewClient connects to addr ("host:port", "grpc://host:port" or "grpcs://host:port"; "" reads
// $TRACKLANE_TRACKING_URI, else DefaultAddress) and waits until the connection is ready or ctx
// ends, so a wrong address fails here rather than on the first call.
func NewClient(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	o := options{
		headers:    map[string]string{},
		token:      os.Getenv("TRACKLANE_TRACKING_TOKEN"),
		caFile:     os.Getenv("TRACKLANE_TRACKING_CA_FILE"),
		clientCert: os.Getenv("TRACKLANE_TRACKING_CLIENT_CERT_FILE"),
		clientKey:  os.Getenv("TRACKLANE_TRACKING_CLIENT_KEY_FILE"),
	}
	if u, err := user.Current(); err == nil {
		o.user = u.Username
	}
	for _, opt := range opts {
		opt(&o)
	}
	if addr == "" {
		addr = os.Getenv("TRACKLANE_TRACKING_URI")
	}
	if addr == "" {
		addr = DefaultAddress
	}
	target, secure, err := parseAddress(addr)
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if o.tls != nil {
		creds = credentials.NewTLS(o.tls)
	} else if secure {
		cfg, err := tlsConfig(o)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(cfg)
	}
	if o.user != "" {
		o.headers["user"] = o.user
	}
	if o.token != "" {
		o.headers["authorization"] = "Bearer " + o.token
	}
	md := metadata.New(o.headers)
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes), grpc.MaxCallSendMsgSize(maxMessageBytes)),
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
			return invoker(withMetadata(ctx, md), method, req, reply, cc, callOpts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, callOpts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(withMetadata(ctx, md), desc, cc, method, callOpts...)
		}),
	}
	conn, err := grpc.NewClient(target, append(dial, o.dialOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("tracklane: %s: %w", addr, err)
	}
	if err := waitReady(ctx, conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("tracklane: cannot reach %s: %w", addr, err)
	}
	return &Client{
		conn:      conn,
		tracking:  pb.NewTrackingServiceClient(conn),
		artifacts: pb.NewArtifactServiceClient(conn),
		registry:  pb.NewRegistryServiceClient(conn),
	}, nil
}

// tlsConfig trusts the CA file (else the system roots) and presents the client certificate if set.
func tlsConfig(o options) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("tracklane: CA file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tracklane: CA file %s holds no PEM certificate", o.caFile)
		}
	}
	if o.clientCert != "" || o.clientKey != "" {
		pair, err := tls.LoadX509KeyPair(o.clientCert, o.clientKey)
		if err != nil {
			return nil, fmt.Errorf("tracklane: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

func parseAddress(addr string) (target string, secure bool, err error) {
	switch {
	case strings.HasPrefix(addr, "grpcs://"):
		target, secure = strings.TrimPrefix(addr, "grpcs://"), true
	case strings.HasPrefix(addr, "grpc://"):
		target = strings.TrimPrefix(addr, "grpc://")
	case strings.Contains(addr, "://"):
		return "", false, fmt.Errorf("tracklane: address %q: use host:port, grpc:// or grpcs://", addr)
	default:
		target = addr
	}
	target = strings.TrimSuffix(target, "/")
	if target == "" {
		return "", false, fmt.Errorf("tracklane: address %q has no host", addr)
	}
	return "dns:///" + target, secure, nil
}

func waitReady(ctx context.Context, conn *grpc.ClientConn) error {
	conn.Connect()
	for {
		state := conn.GetState()
		if state == connectivity.Ready {
			return nil
		}
		if !conn.WaitForStateChange(ctx, state) {
			return ctx.Err()
		}
	}
}

func withMetadata(ctx context.Context, md metadata.MD) context.Context {
	if len(md) == 0 {
		return ctx
	}
	if existing, ok := metadata.FromOutgoingContext(ctx); ok {
		return metadata.NewOutgoingContext(ctx, metadata.Join(md, existing))
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// Close closes the connection. Close a Streamer first.
func (c *Client) Close() error { return c.conn.Close() }

// Conn is the underlying connection, e.g. for the standard health service.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Tracking is the generated TrackingService stub, for the RPCs without a helper here. Its errors
// are raw gRPC statuses; pass them through AsError to get *Error.
func (c *Client) Tracking() pb.TrackingServiceClient { return c.tracking }

// Artifacts is the generated ArtifactService stub.
func (c *Client) Artifacts() pb.ArtifactServiceClient { return c.artifacts }

// Registry is the generated RegistryService stub.
func (c *Client) Registry() pb.RegistryServiceClient { return c.registry }

// AsError converts an error from a generated stub into *Error (nil stays nil).
func AsError(err error) error { return wrap(err) }
