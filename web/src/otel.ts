// The same job done with the OpenTelemetry JS logs SDK (LoggerProvider, BatchLogRecordProcessor,
// OTLPLogExporter over HTTP/JSON) instead of track's own transport, built beside track.js only to
// compare bundle sizes (BENCHMARKS.md). The automatic events are the same code (capture.ts).
import { SeverityNumber } from "@opentelemetry/api";
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchLogRecordProcessor, LoggerProvider } from "@opentelemetry/sdk-logs";
import { capture, guard, validName, KEY_USER, type Attrs } from "./capture";

let user: string | undefined;

const init = guard((o: { endpoint: string; service: string; user?: string }) => {
  user = o.user;
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ "service.name": o.service }),
    processors: [
      new BatchLogRecordProcessor({
        exporter: new OTLPLogExporter({ url: o.endpoint + "/v1/logs" }),
        maxQueueSize: 1000,
        maxExportBatchSize: 100,
        scheduledDelayMillis: 5000,
      }),
    ],
  });
  const logger = provider.getLogger("track-web");
  const emit = (name: string, a: Attrs, body?: string, error?: boolean) => {
    if (!validName(name)) return;
    logger.emit({
      eventName: name,
      body,
      severityNumber: error ? SeverityNumber.ERROR : SeverityNumber.INFO,
      attributes: user ? { ...a, [KEY_USER]: user } : a,
    });
  };
  capture(emit, {});
  (window as any).otelTrack = { event: (n: string, p?: Attrs) => emit(n, p || {}), user: (id?: string) => (user = id) };
});

(window as any).otelTrack = { init };
