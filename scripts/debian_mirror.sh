# Sourced: debian_mirror prints the Debian mirror this machine's own apt
# sources name (one-line .list files, or deb822 .sources), never a
# security mirror; nothing is written anywhere. Used by the VM tier (another
# release's kernels) and the package tier (debootstrap).
debian_mirror() {
  local mirror
  # Either file may be missing: a failed cat must not end the caller (pipefail).
  mirror=$({ cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
    awk '$1 == "deb" && $2 !~ /security/ { print ($2 ~ /^\[/ ? $3 : $2); exit }')
  [ -n "$mirror" ] || mirror=$({ cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
    awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }')
  [ -n "$mirror" ] || { echo "no Debian mirror in this machine's apt sources" >&2; return 1; }
  echo "$mirror"
}
