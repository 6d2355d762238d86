# Sourced by the provisioning scripts (bitcoind.sh, electrum.sh, postgres.sh): a private apt tree for a Debian
# suite (sid unless told).
#
#   sid_apt_setup DIR [SUITE] -> sets the array `apt_opts` (apt-get/apt-cache options that use only DIR: its
#                                own sources list, package lists, caches and no dpkg status) and fetches the
#                                suite's index (default: sid).
#
# The host's apt configuration and dpkg database are never touched; downloaded packages are only unpacked
# (dpkg -x) by the caller, never installed.
sid_apt_setup() {
  local dir=$1 suite=${2:-sid}
  mkdir -p "$dir/lists/partial" "$dir/archives/partial" "$dir/debs" "$dir/etc/preferences.d"
  cat > "$dir/etc/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main
SRC
  : > "$dir/etc/preferences"
  apt_opts=(-o "Dir::Etc::SourceList=$dir/etc/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::Etc::Preferences=$dir/etc/preferences" -o "Dir::Etc::PreferencesParts=$dir/etc/preferences.d"
    -o "Dir::State::Lists=$dir/lists" -o "Dir::State::Status=/dev/null" -o "Dir::Cache=$dir"
    -o "Dir::Cache::archives=$dir/archives" -o "APT::Architecture=amd64" -o "Acquire::Languages=none"
    -o "Debug::NoLocking=1")
  echo "$(basename "$0"): fetching the $suite package index into $dir" >&2
  apt-get "${apt_opts[@]}" -q update >&2
}
