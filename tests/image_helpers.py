"""A Debian base image with python3 for the image tests, made from Debian's packages (no registry).

``mmdebstrap`` writes a minimal bookworm with python3 into a tarball, ``buildah`` imports it as
``localhost/tracklane-ci/debian-python:KEY``; both are cached under ~/.cache/tracklane-ci keyed by
what went in. Images live in their own storage (``containers/storage.conf`` there: the vfs driver,
which works inside containers and unprivileged sandboxes), selected by CONTAINERS_STORAGE_CONF.

    python -m tests.image_helpers     # builds (or finds) the base image and prints its name
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
# The machine's trust store goes in too: where PyPI is reached through a TLS-inspecting proxy,
# uv inside the build must trust the proxy's CA as this machine does.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def storage_env() -> dict[str, str]:
    """The environment that points buildah and podman at the tests' own image storage."""
    root = CACHE / "containers"
    root.mkdir(parents=True, exist_ok=True)
    conf = root / "storage.conf"
    text = (
        "[storage]\n"
        'driver = "vfs"\n'
        f'graphroot = "{root / "storage"}"\n'
        'runroot = "/run/tracklane-ci-containers"\n'
    )
    if not conf.exists() or conf.read_text() != text:
        conf.write_text(text)
    return {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf), "BUILDAH_ISOLATION": "chroot"}


def _key() -> str:
    digest = hashlib.sha256(f"{SUITE} minbase {' '.join(PACKAGES)}".encode())
    if HOST_CA_BUNDLE.exists():
        digest.update(HOST_CA_BUNDLE.read_bytes())
    return digest.hexdigest()[:16]


def base_image() -> str:
    """The base image's name, built on first use (about 20 s and 220 MB)."""
    env = storage_env()
    name = f"localhost/tracklane-ci/debian-python:{_key()}"
    found = subprocess.run(
        ["buildah", "inspect", "--type", "image", name], env=env, capture_output=True, check=False
    )
    if found.returncode == 0:
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
    container = subprocess.run(
        ["buildah", "from", "scratch"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        subprocess.run(
            ["buildah", "add", "--quiet", container, str(tarball), "/"], env=env, check=True, timeout=300
        )
        if HOST_CA_BUNDLE.exists():
            subprocess.run(
                ["buildah", "copy", "--quiet", container, str(HOST_CA_BUNDLE), str(HOST_CA_BUNDLE)],
                env=env,
                check=True,
            )
        subprocess.run(
            [
                "buildah",
                "config",
                "--env",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--cmd",
                "/bin/bash",
                container,
            ],
            env=env,
            check=True,
        )
        subprocess.run(["buildah", "commit", "--quiet", container, name], env=env, check=True, timeout=300)
    finally:
        subprocess.run(["buildah", "rm", container], env=env, capture_output=True, check=False)
    return name


def tools_missing() -> list[str]:
    """Which of buildah and mmdebstrap are not installed."""
    return [tool for tool in ("buildah", "mmdebstrap") if shutil.which(tool) is None]


if __name__ == "__main__":
    print(base_image())
