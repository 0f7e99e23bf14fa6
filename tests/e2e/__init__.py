"""e2e: real processes, as users and operators run them: the ``tracklane`` CLI, server processes
(``tests.servers.start_server``: restarts on the same port, ``--workers``, TLS, signals), fault
injection (SIGKILL, a private PostgreSQL and MinIO stopped mid-call, full disks, memory limits,
hostile connections), the Go/TypeScript/Java clients and the stock MLflow client, projects (uv,
docker, Ray), serving processes and images, compose and CI tools; and test_readme.py, the
README's examples run as a reader runs them.

Fault-suite helpers: _fault_helpers.py and test_stream_faults.py (private PostgreSQL). A missing
toolchain (go, node, java, podman, the MLflow virtualenv) skips, or fails under
TRACKLANE_REQUIRE_TOOLCHAINS=1.
"""
