"""Container health check: ask the router's grpc.health.v1 service for a status.

    python /opt/contact-router/healthcheck.py [SERVICE]

SERVICE defaults to "" (the server's overall status). Exits 0 when the answer is
SERVING, 1 otherwise (NOT_SERVING, SERVICE_UNKNOWN, unreachable, no answer within 3 s).
It needs only grpcio and grpcio-health-checking, which the router depends on already,
so the image needs no grpc_health_probe binary. Used by the Dockerfile's HEALTHCHECK;
Kubernetes uses its native gRPC probes instead.
"""

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str]) -> int:
    service = argv[1] if len(argv) > 1 else ""
    target = f"127.0.0.1:{os.environ.get('ROUTER_PORT') or '50051'}"
    try:
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=3
            )
    except grpc.RpcError as error:
        print(f"{target}: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{target} {service or '(overall)'}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
