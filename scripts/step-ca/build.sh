#!/usr/bin/env bash
# Makes a step-ca binary available and prints its path as the last line of stdout.
#
# Order of preference: $STEP_CA_BIN, a step-ca on PATH, a previous build in .tools/bin, and
# finally a fresh build of main.go against Debian's packaged step-ca 0.19 Go library. The fresh
# build installs golang-go and golang-github-smallstep-certificates-dev with apt-get when they are
# missing, which needs root. Everything except the final path goes to stderr.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${script_dir}/../.." && pwd)"
tools_dir="${repo_root}/.tools"
out="${tools_dir}/bin/step-ca"
packages=(golang-go golang-github-smallstep-certificates-dev)

log() { echo "step-ca build: $*" >&2; }

if [[ -n "${STEP_CA_BIN:-}" ]]; then
  if [[ ! -x "${STEP_CA_BIN}" ]]; then
    log "STEP_CA_BIN=${STEP_CA_BIN} is not an executable file; unset it or fix the path"
    exit 1
  fi
  echo "${STEP_CA_BIN}"
  exit 0
fi

if on_path="$(command -v step-ca)"; then
  echo "${on_path}"
  exit 0
fi

mkdir -p "${tools_dir}/bin"
# Serialises concurrent test runs so only one of them installs and builds.
exec 9>"${tools_dir}/step-ca.lock"
flock 9

if [[ -x "${out}" && "${out}" -nt "${script_dir}/main.go" ]]; then
  echo "${out}"
  exit 0
fi

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("${pkg}")
  fi
done
if ((${#missing[@]} > 0)); then
  if [[ "$(id -u)" != 0 ]]; then
    log "missing Debian packages: ${missing[*]}; install them as root or set STEP_CA_BIN"
    exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # Recommends stay on because cgo (needed by the zstd code that badger pulls in) needs gcc.
  apt-get install -y -qq "${missing[@]}" >&2
fi

library_version="$(dpkg-query -W -f='${Version}' golang-github-smallstep-certificates-dev)"
log "building ${out} from step-ca library ${library_version}"
# Debian installs Go library sources under /usr/share/gocode, which only GOPATH mode can use.
export GO111MODULE=off
export GOPATH="${tools_dir}/gopath:/usr/share/gocode"
export GOCACHE="${GOCACHE:-${tools_dir}/go-build-cache}"
export GOFLAGS=
(cd "${script_dir}" && go build -ldflags "-X main.version=${library_version}" -o "${out}.tmp" .) >&2
mv "${out}.tmp" "${out}"
echo "${out}"
