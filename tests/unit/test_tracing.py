"""Tracing's configuration: the standard OTEL_* variables turn it on, nothing else does."""

from __future__ import annotations

import json

import pytest
import structlog
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from router import cli, logs
from router.errors import ConfigError
from router.tracing import Tracing, exporters_wanted


def exporters(tracing: Tracing) -> list[object]:
    processors = tracing.provider._active_span_processor._span_processors
    exported: list[object] = []
    for processor in processors:
        assert isinstance(processor, BatchSpanProcessor)
        exported.append(processor._batch_processor._exporter)
    return exported


class TestFromEnvironment:
    @pytest.mark.parametrize(
        "environ",
        [
            {},
            {"OTEL_TRACES_EXPORTER": ""},
            {"OTEL_TRACES_EXPORTER": "none"},
            {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "TRUE"},
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"},
        ],
    )
    def test_off_unless_an_exporter_is_named(self, environ: dict[str, str]) -> None:
        """Off by default: only OTEL_TRACES_EXPORTER naming an exporter turns it on, and
        OTEL_SDK_DISABLED=true keeps it off."""
        assert Tracing.from_environment(environ) is None

    def test_console_and_otlp(self) -> None:
        """Each exporter named gets its own batch processor."""
        environ = {
            "OTEL_TRACES_EXPORTER": "otlp, console",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
        }
        tracing = Tracing.from_environment(environ)
        assert tracing is not None
        try:
            kinds = [type(e) for e in exporters(tracing)]
            assert kinds == [OTLPSpanExporter, ConsoleSpanExporter]
        finally:
            tracing.shutdown()

    def test_unknown_exporter_is_named(self) -> None:
        """A name this router does not know stops the start, naming the variable."""
        with pytest.raises(ConfigError, match=r"OTEL_TRACES_EXPORTER.*'zipkin'"):
            exporters_wanted({"OTEL_TRACES_EXPORTER": "zipkin"})

    def test_otlp_over_http_is_refused(self) -> None:
        """Only OTLP over gRPC is shipped: another protocol is a clear error."""
        with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
            Tracing.from_environment(
                {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
            )

    def test_service_name(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """contact-router unless OTEL_SERVICE_NAME says otherwise."""
        monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
        monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
        tracing = Tracing.with_processors([])
        assert tracing.provider.resource.attributes["service.name"] == "contact-router"
        monkeypatch.setenv("OTEL_SERVICE_NAME", "router-eu-1")
        tracing = Tracing.with_processors([])
        assert tracing.provider.resource.attributes["service.name"] == "router-eu-1"


class TestServe:
    def test_bad_exporter_is_one_line(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`serve` with an unknown exporter exits 2 with one line, before connecting."""
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "jaeger")
        assert cli.main(["serve"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("contact-router: OTEL_TRACES_EXPORTER='jaeger'")
        assert len(err.splitlines()) == 1


class TestLogLines:
    def test_json_lines_carry_the_span_ids(self, capsys: pytest.CaptureFixture[str]) -> None:
        """With trace_ids, a line logged inside a span carries its ids; outside, none."""
        tracer = Tracing.with_processors([]).tracer
        logs.configure("json", "info", trace_ids=True)
        try:
            with tracer.start_as_current_span("rpc") as span:
                structlog.get_logger("t").info("contact_submitted")
            structlog.get_logger("t").info("router_idle")
        finally:
            structlog.reset_defaults()
        inside, outside = (json.loads(line) for line in capsys.readouterr().err.splitlines())
        context = span.get_span_context()
        assert inside["trace_id"] == format(context.trace_id, "032x")
        assert inside["span_id"] == format(context.span_id, "016x")
        assert "trace_id" not in outside
