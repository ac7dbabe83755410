#!/usr/bin/env bash
# Builds netcap and runs every test: unit tests, then the root-only host
# integration tests (network namespaces, real traffic, this kernel).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=setup.sh
source scripts/setup.sh

if [ "$(id -u)" -ne 0 ]; then
  echo "test: the integration tests need root (network namespaces, BPF): run with sudo" >&2
  exit 1
fi
cargo build --release --locked
# The release (static binary, .deb): the host tests run it bare, the package
# tier installs it into a fresh chroot, the VM tier boots it alone.
scripts/release.sh
cargo test --release --locked -- --test-threads=2
tests/package/run.sh
# The VM tier: kernels with kprobes and fentry (this machine's has neither),
# from Debian 11's 5.10 (fetched through an apt state of its own) to 6.12.
for series in 5.10 6.1 6.12; do
  tests/vm/run.sh "$series"
done
