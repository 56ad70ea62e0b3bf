#!/usr/bin/env bash
# The system tools of the container and browser tests: podman, runc, debootstrap, chromium.
#
#   bash scripts/install-tools.sh [--dry-run] [TOOL ...]   install what is missing (make test)
#   bash scripts/install-tools.sh --find-chromium          print a usable chromium, or why none
#
# Each tool is installed on its own with apt-get (when root), so one that cannot be installed
# does not block the others, and one line per tool says "already there", "installed" or
# "skipped: why". It never fails: without a tool, its tests skip and say why.
#
# Chromium: Debian's apt package is a real browser. Ubuntu's (chromium-browser, and chromium
# where it exists) is a stub that installs the snap, which needs snapd (absent in containers)
# and whose confinement keeps playwright's profile in /tmp out; so on Ubuntu a package is only
# installed when apt-cache shows it is not the snap stub (e.g. from a PPA), and a chromium
# binary that is a snap or a snap wrapper is never used. ACTIVESCI_CHROMIUM=/path picks one.
#
# For tests (nothing here needs them in normal use):
#   ACTIVESCI_OS_RELEASE  the os-release file to read (default /etc/os-release)
#   ACTIVESCI_TOOLS_ROOT  look for tools, apt-get and apt-cache only under this folder
#                         (its usr/local/bin, usr/bin, usr/sbin, bin, sbin), never on PATH
set -u

OS_RELEASE=${ACTIVESCI_OS_RELEASE:-/etc/os-release}
ROOT=${ACTIVESCI_TOOLS_ROOT:-}
DRY_RUN=0
FIND_CHROMIUM=0
TOOLS=()

for arg in "$@"; do
  case $arg in
    --dry-run) DRY_RUN=1 ;;
    --find-chromium) FIND_CHROMIUM=1 ;;
    -h | --help)
      sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    podman | runc | debootstrap | chromium) TOOLS+=("$arg") ;;
    *)
      echo "install-tools: unknown argument '$arg' (tools: podman runc debootstrap chromium)" >&2
      exit 2
      ;;
  esac
done
[ ${#TOOLS[@]} -eq 0 ] && TOOLS=(podman runc debootstrap chromium)

say() { echo "install-tools: $*"; }

# the first executable NAME in the tool directories, printed; status 1 if none
find_tool() {
  local dirs dir
  if [ -n "$ROOT" ]; then
    dirs="$ROOT/usr/local/bin:$ROOT/usr/bin:$ROOT/usr/sbin:$ROOT/bin:$ROOT/sbin"
  else
    dirs="${PATH:-/usr/bin:/bin}:/usr/sbin:/sbin"
  fi
  local IFS=:
  for dir in $dirs; do
    if [ -n "$dir" ] && [ -f "$dir/$1" ] && [ -x "$dir/$1" ]; then
      echo "$dir/$1"
      return 0
    fi
  done
  return 1
}

# a value of the os-release file (read as data, never sourced), lower case, quotes removed
os_field() {
  [ -r "$OS_RELEASE" ] || return 0
  sed -n "s/^$1=//p" "$OS_RELEASE" | head -n 1 | tr -d "\"'" | tr '[:upper:]' '[:lower:]'
}

DISTRO_ID=$(os_field ID)
DISTRO_LIKE=$(os_field ID_LIKE)
[ -n "$DISTRO_ID" ] || DISTRO_ID=unknown
case " $DISTRO_ID $DISTRO_LIKE " in
  *" ubuntu "*) FAMILY=ubuntu ;;
  *" debian "*) FAMILY=debian ;;
  *) FAMILY=other ;;
esac

# why PATH is a snap or a wrapper of one (printed, status 0), or status 1 if it is neither
snap_reason() {
  local target
  target=$(readlink -m "$1" 2>/dev/null || readlink -f "$1" 2>/dev/null || echo "$1")
  case $target in
    /snap/* | */bin/snap)
      echo "$1 is a snap ($target)"
      return 0
      ;;
  esac
  # a launcher script (Debian's chromium is one) is fine unless it hands over to a snap
  if head -c 2 "$target" 2>/dev/null | grep -q '^#!' \
    && grep -qE '/snap/|snap install|snap run' "$target" 2>/dev/null; then
    echo "$1 is Ubuntu's wrapper that runs the chromium snap"
    return 0
  fi
  return 1
}

CHROMIUM_WHY=""
# a usable chromium (printed); status 1 with CHROMIUM_WHY set if none
find_chromium() {
  local candidates path why
  CHROMIUM_WHY=""
  if [ -n "${ACTIVESCI_CHROMIUM:-}" ]; then
    candidates=("$ACTIVESCI_CHROMIUM")
  else
    candidates=()
    for path in /usr/bin/chromium /usr/bin/chromium-browser /usr/lib/chromium/chromium \
      /usr/bin/google-chrome-stable /usr/bin/google-chrome; do
      candidates+=("$ROOT$path")
    done
  fi
  for path in "${candidates[@]}"; do
    [ -e "$path" ] || [ -L "$path" ] || continue
    if why=$(snap_reason "$path"); then
      CHROMIUM_WHY="${CHROMIUM_WHY:+$CHROMIUM_WHY; }$why"
      continue
    fi
    [ -f "$path" ] && [ -x "$path" ] || continue
    echo "$path"
    return 0
  done
  if [ -z "$CHROMIUM_WHY" ]; then
    CHROMIUM_WHY="no chromium at ${candidates[*]}"
  fi
  return 1
}

if [ "$FIND_CHROMIUM" = 1 ]; then
  if find_chromium; then exit 0; fi
  echo "$CHROMIUM_WHY" >&2
  exit 1
fi

# why apt package PKG is Ubuntu's snap stub (printed, status 0); status 1 if it is a real one,
# status 2 if apt does not know it
apt_snap_stub() {
  local info
  info=$("$APT_CACHE" show --no-all-versions "$1" 2>/dev/null) || return 2
  [ -n "$info" ] || return 2
  if echo "$info" | grep -qiE '^(pre-)?depends:.*\bsnapd\b'; then
    echo "apt's $1 is the snap stub (it depends on snapd)"
    return 0
  fi
  if echo "$info" | grep -qiE '^description(-[a-z_]+)?:.*\bsnap\b'; then
    echo "apt's $1 is the snap stub (its description says snap)"
    return 0
  fi
  return 1
}

APT_GET=$(find_tool apt-get) || APT_GET=""
APT_CACHE=$(find_tool apt-cache) || APT_CACHE=""
if [ "$DRY_RUN" = 1 ]; then IS_ROOT=1; else [ "$(id -u)" = 0 ] && IS_ROOT=1 || IS_ROOT=0; fi
UPDATED=0

# install apt package PKG; status 0 when apt-get succeeded (or would, in a dry run)
apt_install() {
  if [ "$DRY_RUN" = 1 ]; then return 0; fi
  if [ "$UPDATED" = 0 ]; then
    UPDATED=1
    "$APT_GET" update -qq >/dev/null 2>&1 || say "apt-get update failed; installing from the lists there are"
  fi
  DEBIAN_FRONTEND=noninteractive "$APT_GET" install -y -qq "$1" >/dev/null 2>&1
}

# what can install TOOL: packages to try, or a reason to skip (printed as "skip: why")
packages_for() {
  local pkg why status
  if [ "$1" != chromium ]; then
    echo "$1"
    return
  fi
  if [ "$FAMILY" != ubuntu ]; then
    echo chromium
    return
  fi
  local found="" reasons=""
  for pkg in chromium chromium-browser; do
    why=$(apt_snap_stub "$pkg")
    status=$?
    case $status in
      0) reasons="${reasons:+$reasons; }$why" ;;
      1) found="$found $pkg" ;;
      *) reasons="${reasons:+$reasons; }apt has no $pkg" ;;
    esac
  done
  if [ -n "$found" ]; then
    echo "$found"
  else
    echo "skip: on $DISTRO_ID $reasons; the snap needs snapd and playwright cannot drive it;" \
      "install a real build (e.g. Google Chrome's .deb) and set ACTIVESCI_CHROMIUM=/path"
  fi
}

# the path of TOOL if it is there (printed); status 1 if not
present() {
  if [ "$1" = chromium ]; then find_chromium; else find_tool "$1"; fi
}

for tool in "${TOOLS[@]}"; do
  if path=$(present "$tool"); then
    say "$tool: already there ($path)"
    continue
  fi
  if [ -z "$APT_GET" ] || [ -z "$APT_CACHE" ]; then
    say "$tool: skipped: no apt-get on $DISTRO_ID (install it with the system's package manager)"
    continue
  fi
  if [ "$IS_ROOT" = 0 ]; then
    say "$tool: skipped: installing needs root (sudo bash scripts/install-tools.sh $tool)"
    continue
  fi
  packages=$(packages_for "$tool")
  case $packages in
    skip:*)
      say "$tool: skipped:${packages#skip:}"
      continue
      ;;
  esac
  done_with=""
  for pkg in $packages; do
    if [ "$DRY_RUN" = 1 ]; then
      done_with=$pkg
      break
    fi
    if apt_install "$pkg"; then
      done_with=$pkg
      break
    fi
  done
  if [ -z "$done_with" ]; then
    say "$tool: skipped: apt-get install $packages failed"
  elif [ "$DRY_RUN" = 1 ]; then
    say "$tool: would install (apt-get install $done_with)"
  elif path=$(present "$tool"); then
    say "$tool: installed ($path, apt package $done_with)"
  elif [ "$tool" = chromium ]; then
    say "$tool: skipped: apt package $done_with installed, but $CHROMIUM_WHY"
  else
    say "$tool: skipped: apt package $done_with installed, but no $tool found"
  fi
done
exit 0
