#!/usr/bin/env bash
# Builds kube-apiserver, etcd and kubectl at the pinned Kubernetes version from the Go module proxy,
# the way envtest uses real binaries. The binaries are cached per version outside the repository
# ($XDG_CACHE_HOME/ack-kms-sentinel/k8s/v<version>/bin); a warm cache makes this a no-op.
#
# Why a wrapper module: k8s.io/kubernetes requires every staging module at v0.0.0 and replaces it with
# ./staging/..., so `go install k8s.io/kubernetes/cmd/kube-apiserver@v1.x` cannot work. The wrapper
# replaces each staging module with its published v0.x.y (kubernetes/kubernetes#79384). The staging list
# is read from the .mod file the proxy serves, so new staging modules (cri-streaming, streaming in 1.36)
# need no change here.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION=${K8S_VERSION:-$(tr -d ' \n' < "$here/K8S_VERSION")}
staging=0.${K8S_VERSION#1.}
minor=$(echo "$K8S_VERSION" | cut -d. -f2)
cache=${ACK_KMS_SENTINEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ack-kms-sentinel}
out=$cache/k8s/v$K8S_VERSION
bin=$out/bin

# `build.sh kube-controller-manager`: also the controller manager, for the benchmark against the in-tree
# storage version migrator only (no test needs it), built from the module the others were built from.
if [[ ${1:-} == kube-controller-manager ]]; then
  if [[ ! -f $out/.complete ]]; then bash "$0"; fi
  if [[ -x $bin/kube-controller-manager ]]; then exit 0; fi
  command -v go >/dev/null || { echo "k8s-bins: Go is required to build kube-controller-manager" >&2; exit 1; }
  start=$(date +%s)
  echo "k8s-bins: building kube-controller-manager v$K8S_VERSION into $bin (once, a few minutes)" >&2
  cd "$out/mod"
  export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
    -o "$bin/kube-controller-manager.tmp" k8s.io/kubernetes/cmd/kube-controller-manager
  mv "$bin/kube-controller-manager.tmp" "$bin/kube-controller-manager"
  echo "k8s-bins: kube-controller-manager built in $(( $(date +%s) - start ))s" >&2
  exit 0
fi

if [[ -x $bin/kube-apiserver && -x $bin/etcd && -x $bin/kubectl && -f $out/.complete ]]; then
  echo "k8s-bins: v$K8S_VERSION cached in $bin" >&2
  exit 0
fi

command -v go >/dev/null || { echo "k8s-bins: Go is required (go1.26+) to build kube-apiserver" >&2; exit 1; }
start=$(date +%s)
echo "k8s-bins: building kube-apiserver, etcd, kubectl v$K8S_VERSION into $bin (first build takes a while)" >&2

mod=$out/mod
rm -rf "$mod" && mkdir -p "$mod" "$bin"
cd "$mod"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
go mod init local/k8sbins >/dev/null 2>&1
kmod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
[[ -f $kmod ]] || { echo "k8s-bins: the Go module proxy did not serve k8s.io/kubernetes@v$K8S_VERSION" >&2; exit 1; }
replaces=()
while read -r m; do replaces+=("-replace=$m=$m@v$staging"); done \
  < <(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => \./staging/.*#\1#p' "$kmod")
echo "k8s-bins: ${#replaces[@]} staging modules replaced with v$staging" >&2
go mod edit "${replaces[@]}" "-require=k8s.io/kubernetes@v$K8S_VERSION"
# etcd at exactly the version Kubernetes pins (the server module is its main package).
etcd_version=$(sed -n 's#^[[:space:]]*go.etcd.io/etcd/server/v3 \(v[^ ]*\).*#\1#p' "$kmod" | head -1)
go mod edit "-require=go.etcd.io/etcd/server/v3@$etcd_version"
cat > tools.go <<GO
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
go mod tidy -e >/dev/null 2>&1 || true
go get "k8s.io/kubernetes@v$K8S_VERSION" "go.etcd.io/etcd/server/v3@$etcd_version"
version_flags="-X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
go build -trimpath -ldflags "-s -w $version_flags" -o "$bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
echo "k8s-bins: kube-apiserver built after $(( $(date +%s) - start ))s" >&2
go build -trimpath -ldflags "-s -w $version_flags" -o "$bin/kubectl" k8s.io/kubernetes/cmd/kubectl
echo "k8s-bins: kubectl built after $(( $(date +%s) - start ))s" >&2
go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3
echo "$etcd_version" > "$out/ETCD_VERSION"
touch "$out/.complete"
echo "k8s-bins: done in $(( $(date +%s) - start ))s (etcd $etcd_version)" >&2
