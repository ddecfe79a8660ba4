#!/usr/bin/env bash
# Builds the pinned engines (versions.env) with Go into $LILYPAD_TOOLS_DIR/bin
# (default ~/.cache/lilypad/tools/bin). A tool already built at its pinned version is kept.
# Usage: deploy/tools/install.sh [geth] [kubo] [bacalhau] [buildx] [compose]
#        (no names: geth, kubo and bacalhau)
# buildx and compose are Docker CLI plugins: they also get a link as docker-buildx and
# docker-compose in $LILYPAD_TOOLS_DIR/cli-plugins, a directory the Docker CLI reads with
# DOCKER_CONFIG pointing at its parent (or link them into ~/.docker/cli-plugins).
#
# kubo and Bacalhau carry replace/exclude directives in their go.mod, which
# `go install pkg@version` refuses; each is built from a throwaway module of ours that
# requires it at the pinned version and repeats those directives.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
dir=${LILYPAD_TOOLS_DIR:-$HOME/.cache/lilypad/tools}
mkdir -p "$dir/bin" "$dir/build"
command -v go >/dev/null || { echo "install.sh: Go is needed (apt-get install golang-go)" >&2; exit 1; }

# build_module NAME MODULE VERSION PACKAGE [LDFLAGS]: a module of ours requiring MODULE@VERSION
# with its directives, then `go build PACKAGE`.
build_module() {
    local name=$1 module=$2 version=$3 package=$4 ldflags=${5:-}
    local work="$dir/build/$name"
    rm -rf "$work" && mkdir -p "$work"
    local gomod
    gomod=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "$module@$version" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
    local go_line
    go_line=$(grep -m1 '^go ' "$gomod")
    {
        echo "module lilypad.local/tools/$name"
        echo
        echo "$go_line"
        echo
        echo "require $module $version"
        echo
        # Every replace/exclude directive, single-line or block, as upstream wrote it.
        awk '/^(replace|exclude) \($/ {b=1} b {print} b && /^\)$/ {b=0; print ""} /^(replace|exclude) [^(]/ {print}' "$gomod"
    } > "$work/go.mod"
    printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$package" > "$work/tools.go"
    (cd "$work" && GOFLAGS=-mod=mod go mod tidy && go build -trimpath -ldflags "$ldflags" -o "$dir/bin/$name.new" "$package")
}

install_one() {
    local name=$1 version
    case $name in
        geth) version=$GETH_VERSION ;;
        kubo) version=$KUBO_VERSION ;;
        bacalhau) version=$BACALHAU_VERSION ;;
        buildx) version=$BUILDX_VERSION ;;
        compose) version=$COMPOSE_VERSION ;;
        *) echo "install.sh: unknown tool $name (geth, kubo, bacalhau, buildx, compose)" >&2; exit 2 ;;
    esac
    local bin=$name
    [ "$name" = kubo ] && bin=ipfs
    if [ -x "$dir/bin/$bin" ] && [ "$(cat "$dir/bin/$bin.version" 2>/dev/null)" = "$version" ]; then
        echo "$bin $version: already built in $dir/bin"
        link_plugin "$name"
        return
    fi
    local started=$SECONDS
    echo "building $bin $version (a few minutes) ..."
    case $name in
        geth)
            GOBIN="$dir/build/geth-bin" go install "github.com/ethereum/go-ethereum/cmd/geth@$version"
            mv "$dir/build/geth-bin/geth" "$dir/bin/geth.new" ;;
        kubo)
            build_module ipfs github.com/ipfs/kubo "$version" github.com/ipfs/kubo/cmd/ipfs
            ;;
        bacalhau)
            build_module bacalhau github.com/bacalhau-project/bacalhau "$version" \
                github.com/bacalhau-project/bacalhau \
                "-X github.com/bacalhau-project/bacalhau/pkg/version.GITVERSION=$version" ;;
        buildx)
            GOBIN="$dir/build/buildx-bin" go install -ldflags "-X github.com/docker/buildx/version.Version=$version" \
                "github.com/docker/buildx/cmd/buildx@$version"
            mv "$dir/build/buildx-bin/buildx" "$dir/bin/buildx.new" ;;
        compose)
            build_module compose github.com/docker/compose/v2 "$version" github.com/docker/compose/v2/cmd \
                "-X github.com/docker/compose/v2/internal.Version=$version" ;;
    esac
    mv "$dir/bin/$bin.new" "$dir/bin/$bin"
    echo "$version" > "$dir/bin/$bin.version"
    echo "$bin $version built in $((SECONDS - started)) s: $dir/bin/$bin"
    link_plugin "$name"
}

# The Docker CLI finds a plugin as cli-plugins/docker-NAME.
link_plugin() {
    case $1 in
        buildx | compose)
            mkdir -p "$dir/cli-plugins"
            ln -sfn "../bin/$1" "$dir/cli-plugins/docker-$1" ;;
    esac
}

tools=("$@")
[ ${#tools[@]} -eq 0 ] && tools=(geth kubo bacalhau)
for tool in "${tools[@]}"; do install_one "$tool"; done
