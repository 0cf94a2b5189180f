"""Sends logs, metrics and spans to a Tenantry data plane with the unmodified OpenTelemetry
Python SDK and its OTLP/HTTP (protobuf) exporters, as a tenant's agent would.

Usage: send_telemetry.py BASE_URL TENANT API_KEY SERVICE COUNT [COMPRESSION]
Sends COUNT spans, COUNT log records and one counter (one data point), compressed as
COMPRESSION says (`none`, the default, or `gzip`: the exporters' `compression` option, as
OTEL_EXPORTER_OTLP_COMPRESSION sets it). Exits non-zero if an export failed.
"""

import logging
import sys

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

base, tenant, api_key, service, count = sys.argv[1:6]
count = int(count)
compression = {"none": Compression.NoCompression, "gzip": Compression.Gzip}[
    sys.argv[6] if len(sys.argv) > 6 else "none"
]
headers = {"X-Tenant": tenant, "X-API-Key": api_key}
resource = Resource.create({"service.name": service})
failures = []


class Checked:
    """Wraps an exporter to remember failed exports (the SDK only logs them)."""

    def __init__(self, exporter, name):
        self.exporter = exporter
        self.name = name

    def __getattr__(self, attribute):
        return getattr(self.exporter, attribute)

    def export(self, batch, *args, **kwargs):
        result = self.exporter.export(batch, *args, **kwargs)
        if getattr(result, "name", "SUCCESS") != "SUCCESS":
            failures.append(self.name)
        return result


span_exporter = Checked(
    OTLPSpanExporter(endpoint=f"{base}/v1/traces", headers=headers, compression=compression),
    "traces",
)
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
tracer = tracer_provider.get_tracer("tenantry-test")
for index in range(count):
    with tracer.start_as_current_span(f"operation-{index}") as span:
        span.set_attribute("index", index)

log_exporter = Checked(
    OTLPLogExporter(endpoint=f"{base}/v1/logs", headers=headers, compression=compression), "logs"
)
logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
logger = logging.getLogger("tenantry-test")
logger.propagate = False
logger.setLevel(logging.INFO)
logger.addHandler(LoggingHandler(level=logging.INFO, logger_provider=logger_provider))
for index in range(count):
    logger.warning("log line %d from the python sdk", index)

metric_exporter = Checked(
    OTLPMetricExporter(endpoint=f"{base}/v1/metrics", headers=headers, compression=compression),
    "metrics",
)
reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=3_600_000)
meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
counter = meter_provider.get_meter("tenantry-test").create_counter("jobs_done", unit="1")
counter.add(count)

meter_provider.shutdown()
logger_provider.shutdown()
tracer_provider.shutdown()
if failures:
    print("failed exports:", failures, file=sys.stderr)
    sys.exit(1)
