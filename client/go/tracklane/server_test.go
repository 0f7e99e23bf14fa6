package tracklane_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"example.com/tracklane/client/go/tracklane"
)

// testServer is a real Tracklane server for the package's tests: $TRACKLANE_TEST_SERVER_URI when
// set, else `python3 -m tracklane_server server` on a free loopback port with a scratch data folder
// (the Python interpreter from $TRACKLANE_PYTHON, default python3).
var testServer string

func TestMain(m *testing.M) {
	os.Exit(runWithServer(m))
}

func runWithServer(m *testing.M) int {
	if uri := os.Getenv("TRACKLANE_TEST_SERVER_URI"); uri != "" {
		testServer = uri
		return m.Run()
	}
	addr, stop, err := startServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot start a Tracklane server:", err)
		return 1
	}
	defer stop()
	testServer = addr
	return m.Run()
}

// serverProcess is one `tracklane server` process on addr over dataDir.
type serverProcess struct {
	addr   string
	cmd    *exec.Cmd
	exited chan error
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// launch starts a server and waits until it listens (60 s at most).
func launch(addr, dataDir string, extraEnv ...string) (*serverProcess, error) {
	python := os.Getenv("TRACKLANE_PYTHON")
	if python == "" {
		python = "python3"
	}
	cmd := exec.Command(python, "-m", "tracklane_server", "server", "--bind", addr, "--http-bind", "none", "--data-dir", dataDir, "--log-level", "WARNING")
	_, here, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(here), "..", "..", "..")
	// The server package imports from the repository when it is not installed.
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(repo, "server")+string(os.PathListSeparator)+filepath.Join(repo, "client", "python"))
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &serverProcess{addr: addr, cmd: cmd, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.exited:
			return nil, fmt.Errorf("server exited: %v", err)
		default:
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return p, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.kill()
	return nil, fmt.Errorf("server did not listen on %s within 60 s", addr)
}

// stop asks for a graceful stop (SIGINT), then kills after 15 s.
func (p *serverProcess) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		p.kill()
	}
}

// kill is kill -9: no goodbye to the clients.
func (p *serverProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

func startServer() (addr string, stop func(), err error) {
	addr, err = freeAddr()
	if err != nil {
		return "", nil, err
	}
	dataDir, err := os.MkdirTemp("", "tracklane-go-test-")
	if err != nil {
		return "", nil, err
	}
	p, err := launch(addr, dataDir)
	if err != nil {
		os.RemoveAll(dataDir)
		return "", nil, err
	}
	return addr, func() { p.stop(); os.RemoveAll(dataDir) }, nil
}

func newClient(t *testing.T) (context.Context, *tracklane.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	c, err := tracklane.NewClient(ctx, testServer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ctx, c
}

func unique(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}
