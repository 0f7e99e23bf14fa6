"""A Debian image with python3 for the docker_env tests, made from Debian's packages (no registry).

``mmdebstrap`` writes a minimal bookworm with python3 into a tarball, cached under
``~/.cache/tracklane-ci/images`` (the same file, by the same key, as the serving image tests make),
and ``podman import`` turns it into ``localhost/tracklane-ci/debian-python:KEY`` in this suite's own
image storage (overlay, ``~/.cache/tracklane-ci/podman-projects``). ``podman_env()`` points podman at
that storage and at a containers.conf that works in unprivileged sandboxes too (runc where it is
installed: crun refuses hybrid cgroup hierarchies; rlimits no higher than the sandbox allows).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

CACHE = Path(os.environ.get("TRACKLANE_CI_CACHE", Path.home() / ".cache" / "tracklane-ci"))
SUITE = "bookworm"
PACKAGES = ("python3", "ca-certificates", "passwd")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def _key() -> str:
    digest = hashlib.sha256(f"{SUITE} minbase {' '.join(PACKAGES)}".encode())
    if HOST_CA_BUNDLE.exists():
        digest.update(HOST_CA_BUNDLE.read_bytes())
    return digest.hexdigest()[:16]


def tools_missing() -> list[str]:
    """What the docker_env tests need and this machine lacks."""
    return [tool for tool in ("podman", "mmdebstrap") if shutil.which(tool) is None]


def podman_env() -> dict[str, str]:
    """Variables that point podman at this suite's storage and configuration."""
    root = CACHE / "podman-projects"
    root.mkdir(parents=True, exist_ok=True)
    storage = root / "storage.conf"
    storage.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{root / "storage"}"\n'
        'runroot = "/run/tracklane-ci-podman-projects"\n'
    )
    conf = root / "containers.conf"
    engine = '[engine]\nruntime = "runc"\n' if shutil.which("runc") else ""
    conf.write_text(f'[containers]\ndefault_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]\n{engine}')
    return {"CONTAINERS_STORAGE_CONF": str(storage), "CONTAINERS_CONF": str(conf)}


def base_image() -> str:
    """The image's name, made on first use (the tarball: about 20 s and 220 MB)."""
    env = {**os.environ, **podman_env()}
    name = f"localhost/tracklane-ci/debian-python:{_key()}"
    if subprocess.run(["podman", "image", "exists", name], env=env, check=False).returncode == 0:
        return name
    tarball = CACHE / "images" / f"debian-python-{_key()}.tar"
    if not tarball.exists():
        tarball.parent.mkdir(parents=True, exist_ok=True)
        partial = tarball.with_suffix(".partial.tar")
        subprocess.run(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(partial),
            ],
            check=True,
            timeout=900,
        )
        partial.rename(tarball)
    subprocess.run(["podman", "import", "--quiet", str(tarball), name], env=env, check=True, timeout=600)
    return name
