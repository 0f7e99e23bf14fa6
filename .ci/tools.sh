# Exact versions of the tools CI and the test services use, and where each one is cached.
# Sourced by .ci/run and .ci/services.sh (needs CACHE set). Pinned, so that two runs test against the
# same tools: an `@latest` build changes under the suite whenever upstream moves.
#
# Each tool lives in a folder of its own version, $CACHE/tools/NAME@VERSION/: a changed pin builds
# anew into a new folder (the cache is keyed by version), and never overwrites a binary that another
# checkout, or a running MinIO, still uses. A build goes to NAME@VERSION.partial and is renamed when
# it is complete, so an interrupted build is never taken for a cached one.
#
# The protoc plugins (protoc-gen-go, protoc-gen-go-grpc) are pinned in proto/generate.py, which
# builds them the same way; ts-proto by client/typescript/package-lock.json; protoc and
# protoc-gen-grpc-java by client/java/pom.xml; grpcio-tools and mypy-protobuf by pyproject.toml.

# MinIO's release tags (RELEASE.2025-10-15T17-29-55Z...) are not semantic versions, so Go addresses
# its commits by pseudo-version only. This is the last commit of MinIO's community repository
# (2026-02-12, archived since; the code of RELEASE.2025-10-15T17-29-55Z plus documentation changes)
# and the only version of it the Go module proxy serves us. `minio --version` says DEVELOPMENT.GOGET
# for any `go install` build; `go version -m BINARY` shows the module version it was built from.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
# grpcurl's latest release (2025-02-19); the grpcurl tests read its reflection output.
GRPCURL_VERSION=v1.9.4
# buf lints proto/ (`buf lint`); the npm package ships the release binary.
BUF_VERSION=1.75.0

tool_dir() { printf '%s/tools/%s@%s' "$CACHE" "$1" "$2"; }

# _publish DIR: moves DIR.partial to DIR; a concurrent build that got there first wins.
_publish() {
  if ! mv -T "$1.partial" "$1" 2>/dev/null; then
    rm -rf "$1.partial"
    [[ -d $1 ]] || { echo "error: could not publish $1" >&2; return 1; }
  fi
}

# go_tool NAME PACKAGE VERSION: prints the path of the binary, building it with `go install` the
# first time (into its version's folder), and checks that the build is of VERSION.
go_tool() {
  local name=$1 package=$2 version=$3 dir built
  dir=$(tool_dir "$name" "$version")
  if [[ ! -x $dir/$name ]]; then
    command -v go >/dev/null || { echo "error: Go is needed to build $name $version" >&2; return 1; }
    echo "building $name $version (go install; MinIO takes minutes)" >&2
    rm -rf "$dir.partial"
    mkdir -p "$dir.partial"
    if ! GOBIN="$dir.partial" timeout 1800 go install "$package@$version" >&2; then
      rm -rf "$dir.partial"
      echo "error: go install $package@$version failed" >&2
      return 1
    fi
    built=$(go version -m "$dir.partial/$name" | awk '$1 == "mod" {print $3; exit}')
    if [[ $built != "$version" ]]; then
      rm -rf "$dir.partial"
      echo "error: $name built as ${built:-?}, expected $version" >&2
      return 1
    fi
    _publish "$dir"
  fi
  printf '%s\n' "$dir/$name"
}

# npm_tool NAME PACKAGE VERSION: prints the path of the package's NAME binary, installing exactly
# VERSION (into its version's folder) the first time.
npm_tool() {
  local name=$1 package=$2 version=$3 dir
  dir=$(tool_dir "$name" "$version")
  if [[ ! -x $dir/node_modules/.bin/$name ]]; then
    command -v npm >/dev/null || { echo "error: npm is needed to install $name $version" >&2; return 1; }
    echo "installing $package@$version (npm)" >&2
    rm -rf "$dir.partial"
    mkdir -p "$dir.partial"
    if ! timeout 600 npm install --prefix "$dir.partial" --no-audit --no-fund --loglevel=error \
      --save-exact "$package@$version" >&2; then
      rm -rf "$dir.partial"
      echo "error: npm install $package@$version failed" >&2
      return 1
    fi
    _publish "$dir"
  fi
  printf '%s\n' "$dir/node_modules/.bin/$name"
}

minio_binary() { go_tool minio github.com/minio/minio "$MINIO_VERSION"; }
grpcurl_binary() { go_tool grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl "$GRPCURL_VERSION"; }
buf_binary() { npm_tool buf @bufbuild/buf "$BUF_VERSION"; }
