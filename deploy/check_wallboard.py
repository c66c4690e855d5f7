"""Checks that compose.yaml's browser wallboard holds together (run by deploy/check.sh
with its tools' Python): Prometheus scrapes the router's metrics port, Grafana's data
source is that Prometheus, its dashboard provider reads the directory compose mounts
the dashboard into, and every file compose mounts exists. Prints each problem; exit 1
if there is any."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ruamel.yaml import YAML

DEPLOY = Path(__file__).resolve().parent


def load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """A service's bind mounts of files under deploy/: container path -> host path."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            found[target] = (DEPLOY / source).resolve()
    return found


def problems() -> list[str]:
    compose = load(DEPLOY / "compose.yaml")["services"]
    found: list[str] = []
    for name in ("prometheus", "grafana"):
        if name not in compose:
            return [f"compose.yaml: no {name} service"]
        for target, source in mounts(compose[name]).items():
            if not source.exists():
                found.append(f"compose.yaml: {name} mounts {source} at {target}: no such file")
    metrics_port = str(compose["router"]["environment"]["ROUTER_METRICS_PORT"])

    prometheus_files = mounts(compose["prometheus"])
    config = load(prometheus_files["/etc/prometheus/prometheus.yml"])
    targets = [
        target
        for job in config.get("scrape_configs", [])
        for static in job.get("static_configs", [])
        for target in static.get("targets", [])
    ]
    if f"router:{metrics_port}" not in targets:
        found.append(
            f"prometheus.yml scrapes {targets}, not the router's metrics port "
            f"router:{metrics_port} (ROUTER_METRICS_PORT)"
        )

    grafana = compose["grafana"]
    grafana_files = mounts(grafana)
    provisioning = grafana_files.get("/etc/grafana/provisioning")
    if provisioning is None:
        return [*found, "compose.yaml: grafana does not mount its provisioning directory"]
    sources = [
        source
        for path in sorted((provisioning / "datasources").glob("*.yaml"))
        for source in load(path).get("datasources", [])
    ]
    defaults = [s for s in sources if s.get("isDefault") and s.get("type") == "prometheus"]
    if len(defaults) != 1:
        found.append("grafana datasources: want exactly one default Prometheus data source")
    elif urlsplit(defaults[0]["url"]).netloc != "prometheus:9090":
        found.append(f"grafana's Prometheus is {defaults[0]['url']}, not http://prometheus:9090")

    dashboards = {
        target: source for target, source in grafana_files.items() if source.suffix == ".json"
    }
    paths = [
        provider["options"]["path"]
        for path in sorted((provisioning / "dashboards").glob("*.yaml"))
        for provider in load(path).get("providers", [])
    ]
    for path in paths:
        if not any(Path(target).parent == Path(path) for target in dashboards):
            found.append(f"grafana dashboard provider reads {path}, where compose mounts none")
    home = grafana.get("environment", {}).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home is not None and home not in dashboards:
        found.append(f"GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH {home} is not mounted")
    for source in dashboards.values():
        if source.exists() and not json.loads(source.read_text()).get("uid"):
            found.append(f"{source}: a dashboard without a uid")
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print(f"   {problem}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
