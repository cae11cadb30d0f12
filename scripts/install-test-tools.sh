#!/usr/bin/env bash
# Installs the system tools the tests use, when missing, on Debian/Ubuntu (apt-get; sudo when not root).
# Run by `npm test` (pretest) and by .ci/run. Does nothing when every tool is already there.
set -euo pipefail

# tool → Debian package
declare -A packages=(
  [mosquitto]=mosquitto [mosquitto_pub]=mosquitto-clients [mosquitto_sub]=mosquitto-clients
  [openssl]=openssl [jq]=jq [stdbuf]=coreutils [kubectl]=kubernetes-client
  # better-sqlite3 (the registry) compiles its native module during npm ci
  [g++]=g++ [make]=make [python3]=python3
  # shared state for workers and replicas (test/integration/cluster.test.ts, the PostgreSQL registry)
  [redis-server]=redis-server [runuser]=util-linux
  # the alert rules in deploy/prometheusrule.yaml (test/integration/alerts.test.ts: promtool check/test rules)
  [promtool]=prometheus
)
missing=()
for tool in "${!packages[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${packages[$tool]}")
done
# Debian keeps PostgreSQL's programs off PATH, under /usr/lib/postgresql/<version>/bin
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  missing+=(postgresql)
fi
# Python modules for independent checks, read by Debian's own python3 (a pyenv or venv python3 may come first on
# PATH): CBOR payloads (cbor2) and PKCS#12 bundles (cryptography)
declare -A modules=([cbor2]=python3-cbor2 [cryptography]=python3-cryptography)
for module in "${!modules[@]}"; do
  [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import $module" >/dev/null 2>&1 || missing+=("${modules[$module]}")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
mapfile -t wanted < <(printf '%s\n' "${missing[@]}" | sort -u)

if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing test tools; install these packages (or their equivalents): ${wanted[*]}" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "missing test tools and no sudo; as root run: apt-get install ${wanted[*]}" >&2
    exit 1
  fi
  sudo=(sudo)
fi
echo "installing Debian packages for the tests: ${wanted[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
# a mosquitto started by the package would hold port 1883; the tests start their own
if command -v systemctl >/dev/null 2>&1; then "${sudo[@]}" systemctl stop mosquitto >/dev/null 2>&1 || true; fi
if command -v systemctl >/dev/null 2>&1; then "${sudo[@]}" systemctl stop postgresql redis-server >/dev/null 2>&1 || true; fi
# the prometheus package starts a Prometheus server (and its node exporter) on 9090/9100; the tests need promtool only
if command -v systemctl >/dev/null 2>&1; then "${sudo[@]}" systemctl stop prometheus prometheus-node-exporter >/dev/null 2>&1 || true; fi
