// A real Tracklane server for the tests: $TRACKLANE_TEST_SERVER_URI when set, else
// `python3 -m tracklane_server server` ($TRACKLANE_PYTHON) on a free loopback port, scratch data.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");

export interface TestServer {
  address: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: "127.0.0.1", port });
    sock.once("connect", () => (sock.destroy(), resolve(true)));
    sock.once("error", () => resolve(false));
  });
}

/** A `tracklane server` process on `port` over `dataDir`; `kill()` is kill -9, `stop()` graceful. */
export interface ServerProcess {
  address: string;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export async function freeLoopbackPort(): Promise<number> {
  return freePort();
}

/** Starts a server and waits until it listens (60 s at most). */
export async function launch(port: number, dataDir: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const python = process.env.TRACKLANE_PYTHON ?? "python3";
  const pythonPath = [join(REPO, "server"), join(REPO, "client", "python"), process.env.PYTHONPATH ?? ""].join(delimiter);
  const child: ChildProcess = spawn(
    python,
    ["-m", "tracklane_server", "server", "--bind", `127.0.0.1:${port}`, "--http-bind", "none", "--data-dir", dataDir, "--log-level", "WARNING"],
    { stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, ...env, PYTHONPATH: pythonPath } },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (running()) {
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }
  };
  const proc = { address: `127.0.0.1:${port}`, kill: () => end("SIGKILL"), stop: () => end("SIGINT") };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (!running()) {
      throw new Error(`the server exited (${child.exitCode ?? child.signalCode}) before listening`);
    }
    if (await listening(port)) {
      return proc;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await proc.kill();
  throw new Error(`the server did not listen on 127.0.0.1:${port} within 60 s`);
}

export async function startServer(): Promise<TestServer> {
  const given = process.env.TRACKLANE_TEST_SERVER_URI;
  if (given) {
    return { address: given, stop: async () => undefined };
  }
  const dataDir = mkdtempSync(join(tmpdir(), "tracklane-ts-test-"));
  try {
    const proc = await launch(await freePort(), dataDir);
    return {
      address: proc.address,
      stop: async () => {
        await proc.stop();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}
