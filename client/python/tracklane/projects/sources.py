"""Where a project comes from: a local folder, a git repository or a ``.zip``; and remote ``path`` values.

Project URIs, as ``mlflow run`` takes them:
  ``./proj``, ``/abs/proj``, ``file:///abs/proj``   run in place (with ``version``: that commit of
                                                    the folder's git repository, in a fresh folder)
  ``https://host/org/repo.git``, ``git@host:org/repo.git``, ``ssh://...``, ``git://...``
  ``.../proj.zip`` (a local file or an ``http(s)://`` URL)
  ``...#sub/dir``                                   the project is that subfolder

Git repositories are mirrored once into ``$TRACKLANE_PROJECTS_CACHE/git`` (default
``~/.cache/tracklane/projects``) and only fetched again when the wanted commit is not there yet; each
run gets a fresh working folder extracted from the mirror (MLflow's "new working directory for Git
projects"). Zip files are extracted once per content hash.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tracklane.projects.errors import ExecutionException

__all__ = ["Source", "cache_root", "download_uri", "fetch_project", "split_subdirectory"]

CACHE_ENV = "TRACKLANE_PROJECTS_CACHE"
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Source:
    """A project fetched into a local folder, and what MLflow records about where it came from."""

    work_dir: Path
    source_name: str  # mlflow.source.name
    git_commit: str | None = None
    git_repo_url: str | None = None
    git_branch: str | None = None


def cache_root() -> Path:
    """Where git mirrors, extracted zips and environments are kept."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "tracklane" / "projects")


def split_subdirectory(uri: str) -> tuple[str, str]:
    """``repo#sub/dir`` -> (``repo``, ``sub/dir``); a subfolder may not climb out with ``..``."""
    uri = uri.strip("'\"")
    base, _, sub = uri.partition("#")
    if any(part == ".." for part in Path(sub).parts) or os.path.isabs(sub):
        raise ExecutionException(
            f"project subdirectory {sub!r} must be a relative path inside the project", field="uri"
        )
    return base, sub


def _local_path(uri: str) -> Path | None:
    if uri.startswith("file://"):
        return Path(unquote(urlsplit(uri).path))
    if "://" in uri or re.match(r"^[\w.-]+@[\w.-]+:", uri):
        return None
    return Path(uri).expanduser()


def fetch_project(uri: str, version: str | None = None) -> Source:
    """Fetches the project at ``uri`` (at ``version`` for git) into a local folder.

    Raises:
        ExecutionException: Nothing at the URI, a version of a folder that is not a git repository,
            an unknown version, a missing subfolder, or git is not installed.
    """
    base, sub = split_subdirectory(uri)
    local = _local_path(base)
    if base.endswith(".zip"):
        if version is not None:
            raise ExecutionException("-v/--version applies to git projects, not a .zip", field="version")
        root = _extract_zip(base, local)
        source = Source(root, uri)
    elif local is not None:
        if not local.is_dir():
            raise ExecutionException(f"project {uri!r}: no such folder", field="uri")
        source = _local_folder(local.resolve(), uri, version)
    else:
        source = _git_checkout(base, version, uri)
    work_dir = (source.work_dir / sub).resolve() if sub else source.work_dir
    if not work_dir.is_dir():
        raise ExecutionException(f"project {uri!r}: no subfolder {sub!r} in it", field="uri")
    return Source(work_dir, source.source_name, source.git_commit, source.git_repo_url, source.git_branch)


def _git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    if shutil.which("git") is None:
        raise ExecutionException("git projects need git: install it (apt-get install git)", field="uri")
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise ExecutionException(f"git {args[0]} failed: {result.stderr.strip()[-500:]}", field="uri")
    return result


def _local_folder(path: Path, uri: str, version: str | None) -> Source:
    top = _git("rev-parse", "--show-toplevel", cwd=path, check=False) if shutil.which("git") else None
    in_repo = top is not None and top.returncode == 0
    if version is not None:
        if not in_repo:
            raise ExecutionException(
                f"-v/--version needs a git repository; {path} is not in one", field="version"
            )
        assert top is not None
        repo = Path(top.stdout.strip())
        checked = _git_checkout(str(repo), version, uri, origin_url=_origin(repo) or str(repo))
        return Source(checked.work_dir / path.relative_to(repo), *_rest(checked))
    if not in_repo:
        return Source(path, str(path))
    commit = _git("rev-parse", "HEAD", cwd=path, check=False).stdout.strip() or None
    origin = _origin(path)
    branch = _git("symbolic-ref", "--short", "-q", "HEAD", cwd=path, check=False).stdout.strip() or None
    return Source(path, origin or str(path), commit, origin, branch)


def _rest(source: Source) -> tuple[str, str | None, str | None, str | None]:
    return source.source_name, source.git_commit, source.git_repo_url, source.git_branch


def _origin(path: Path) -> str | None:
    return _git("remote", "get-url", "origin", cwd=path, check=False).stdout.strip() or None


def _git_checkout(url: str, version: str | None, uri: str, origin_url: str | None = None) -> Source:
    """A fresh folder with ``version`` (default: the default branch) of the repository at ``url``."""
    mirror = cache_root() / "git" / hashlib.sha256(url.encode()).hexdigest()[:20]
    if not (mirror / "HEAD").exists():
        partial = mirror.with_name(mirror.name + f".partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        _git("clone", "--mirror", "--quiet", url, str(partial))
        try:
            partial.rename(mirror)
        except OSError:  # another run mirrored it first
            shutil.rmtree(partial, ignore_errors=True)
    elif not (version and _FULL_SHA.match(version) and _has_commit(mirror, version)):
        _git("fetch", "--quiet", "--prune", "--tags", "--force", "origin", cwd=mirror)
    wanted = version or "HEAD"
    commit = _resolve(mirror, wanted)
    if commit is None and version is not None:
        # A commit that no branch or tag reaches: most servers serve it by its id.
        _git("fetch", "--quiet", "origin", version, cwd=mirror, check=False)
        commit = _resolve(mirror, version)
    if commit is None:
        raise ExecutionException(
            f"version {version!r} is neither a commit, a tag nor a branch of {url}", field="version"
        )
    branch = None
    if version is None:
        branch = _git("symbolic-ref", "--short", "-q", "HEAD", cwd=mirror, check=False).stdout.strip() or None
    elif (
        _git("show-ref", "--verify", "--quiet", f"refs/heads/{version}", cwd=mirror, check=False).returncode
        == 0
    ):
        branch = version
    work = Path(tempfile.mkdtemp(prefix="tracklane-project-"))
    archive = subprocess.Popen(["git", "archive", "--format=tar", commit], cwd=mirror, stdout=subprocess.PIPE)
    untar = subprocess.run(
        ["tar", "-x", "-C", str(work)], stdin=archive.stdout, capture_output=True, check=False
    )
    if archive.stdout is not None:
        archive.stdout.close()
    if archive.wait() != 0 or untar.returncode != 0:
        raise ExecutionException(f"could not extract commit {commit} of {url}", field="uri")
    return Source(work, uri, commit, origin_url or url, branch)


def _has_commit(mirror: Path, sha: str) -> bool:
    return _git("cat-file", "-e", f"{sha}^{{commit}}", cwd=mirror, check=False).returncode == 0


def _resolve(mirror: Path, rev: str) -> str | None:
    result = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", cwd=mirror, check=False)
    return result.stdout.strip() or None


def _extract_zip(uri: str, local: Path | None) -> Path:
    with tempfile.TemporaryDirectory(prefix="tracklane-zip-") as tmp:
        if local is None:
            path = Path(tmp) / "project.zip"
            _http_download(uri, path)
        else:
            path = local
            if not path.is_file():
                raise ExecutionException(f"project {uri!r}: no such file", field="uri")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:20]
        target = cache_root() / "zip" / digest
        if target.is_dir():
            return target
        partial = target.with_name(f"{digest}.partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                dest = (partial / member.filename).resolve()
                if not dest.is_relative_to(partial.resolve()):
                    raise ExecutionException(
                        f"zip member {member.filename!r} points outside the project", field="uri"
                    )
            archive.extractall(partial)
        try:
            partial.rename(target)
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)
        return target


def _http_download(url: str, dest: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as exc:
        raise ExecutionException(f"could not download {url}: {exc}", field="uri") from None


def download_uri(uri: str, dest_dir: Path, tracking_uri: str) -> str:
    """Downloads a remote ``path`` parameter value into ``dest_dir``; returns the local path.

    ``runs:/RUN_ID/PATH`` comes through the tracking server; ``s3://BUCKET/KEY`` (a file or a
    prefix) with the AWS variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, and
    ``MLFLOW_S3_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL`` for MinIO); ``http(s)://`` by URL.

    Raises:
        ExecutionException: A scheme it cannot download, or the download failed.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    scheme = uri.split(":", 1)[0].lower()
    if scheme == "runs":
        from tracklane.artifacts import parse_runs_uri
        from tracklane.client import Client

        run_id, path = parse_runs_uri(uri)
        with Client(tracking_uri) as client:
            return client.download_artifacts(run_id, path, dst_path=dest_dir)
    if scheme in ("http", "https"):
        name = os.path.basename(urlsplit(uri).path) or "download"
        _http_download(uri, dest_dir / name)
        return str(dest_dir / name)
    if scheme in ("s3", "s3a"):
        return _s3_download(uri, dest_dir)
    raise ExecutionException(
        f"cannot download {uri!r}: use a local path, runs:/, s3:// or http(s)://", field="parameters"
    )


def _s3_download(uri: str, dest_dir: Path) -> str:
    from minio import Minio

    parts = urlsplit(uri)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    endpoint = os.environ.get("MLFLOW_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL") or ""
    target = urlsplit(endpoint) if endpoint else urlsplit("https://s3.amazonaws.com")
    client = Minio(
        target.netloc,
        access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
        secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
        secure=target.scheme == "https",
        region=os.environ.get("AWS_DEFAULT_REGION"),
    )
    try:
        objects = [o for o in client.list_objects(bucket, prefix=key, recursive=True) if o.object_name]
        exact = [o for o in objects if o.object_name == key]
        if exact or not objects:
            local = dest_dir / (os.path.basename(key) or "download")
            client.fget_object(bucket, key, str(local))
            return str(local)
        folder = dest_dir / (os.path.basename(key.rstrip("/")) or bucket)
        for obj in objects:
            assert obj.object_name is not None
            relative = obj.object_name[len(key) :].lstrip("/")
            client.fget_object(bucket, obj.object_name, str(folder / relative))
        return str(folder)
    except Exception as exc:  # minio's S3Error and urllib3's connection errors alike
        raise ExecutionException(f"could not download {uri}: {exc}", field="parameters") from None
