# Sourced by scripts/up and scripts/test: make .venv with Python 3.11 and install $REQS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
"$PY" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
  || { echo "Tailboard needs Python 3.11 (found $("$PY" --version))" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.installed-$(cat requirements*.txt | sha1sum | cut -c1-12)-$(basename "$REQS")
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$REQS"
  touch "$stamp"
fi
# $OPTIONAL_REQS (scripts/up): packages that build against system libraries; without them
# Tailboard runs, less the features they serve.
if [ -n "${OPTIONAL_REQS:-}" ] && [ ! -f "$stamp-optional" ]; then
  if .venv/bin/python -m pip install -q --disable-pip-version-check -r "$OPTIONAL_REQS" \
       >.venv/optional-install.log 2>&1; then
    touch "$stamp-optional"
  else
    echo "note: $OPTIONAL_REQS did not install (.venv/optional-install.log): LDAP sign-in and" \
         "journal sources are off until it does. On Debian: apt-get install gcc libc6-dev" \
         "pkg-config libldap-dev libsasl2-dev libsystemd-dev; then" \
         ".venv/bin/pip install -r $OPTIONAL_REQS" >&2
  fi
fi
