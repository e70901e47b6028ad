package otlptest

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Receiver accepts OTLP metrics and logs over gRPC and HTTP. It is safe for
// concurrent use.
type Receiver struct {
	// GRPCEndpoint is the gRPC listener's host:port.
	GRPCEndpoint string
	// HTTPEndpoint is the HTTP listener's base URL, such as http://127.0.0.1:4318.
	HTTPEndpoint string

	grpcServer *grpc.Server
	httpServer *http.Server

	mu       sync.Mutex
	requests []*colmetricspb.ExportMetricsServiceRequest
	headers  []map[string]string
	logs     []*collogspb.ExportLogsServiceRequest
	failing  bool
	hang     time.Duration
	attempts int
}

// Point is one number data point of a received request, flattened.
type Point struct {
	Metric    string
	Resource  map[string]string
	Attrs     map[string]string
	Start     time.Time
	End       time.Time
	Value     int64
	Monotonic bool
	Delta     bool
}

// Start serves a Receiver on two free loopback ports until the test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("otlptest: listening for gRPC: %v", err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("otlptest: listening for HTTP: %v", err)
	}
	r.GRPCEndpoint = gl.Addr().String()
	r.HTTPEndpoint = "http://" + hl.Addr().String()

	r.grpcServer = grpc.NewServer()
	colmetricspb.RegisterMetricsServiceServer(r.grpcServer, &grpcMetrics{r: r})
	collogspb.RegisterLogsServiceServer(r.grpcServer, &grpcLogs{r: r})
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/metrics", r.serveOTLP(
		func() proto.Message { return &colmetricspb.ExportMetricsServiceRequest{} },
		&colmetricspb.ExportMetricsServiceResponse{},
		func(m proto.Message, headers map[string]string) {
			r.record(m.(*colmetricspb.ExportMetricsServiceRequest), headers)
		}))
	mux.HandleFunc("/v1/logs", r.serveOTLP(
		func() proto.Message { return &collogspb.ExportLogsServiceRequest{} },
		&collogspb.ExportLogsServiceResponse{},
		func(m proto.Message, _ map[string]string) { r.recordLogs(m.(*collogspb.ExportLogsServiceRequest)) }))
	r.httpServer = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	go func() { _ = r.grpcServer.Serve(gl) }()
	go func() { _ = r.httpServer.Serve(hl) }()
	t.Cleanup(r.Stop)
	return r
}

// Stop closes both listeners and every open connection.
func (r *Receiver) Stop() {
	r.grpcServer.Stop()
	_ = r.httpServer.Close()
}

// SetFailing makes every request fail (gRPC Unavailable, HTTP 503) until
// called with false.
func (r *Receiver) SetFailing(failing bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failing = failing
}

// SetHang makes every request wait d (or until the client gives up) before
// it is answered; zero answers at once.
func (r *Receiver) SetHang(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hang = d
}

// Attempts returns how many requests arrived, accepted or not.
func (r *Receiver) Attempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts
}

// Requests returns the accepted requests, in arrival order.
func (r *Receiver) Requests() []*colmetricspb.ExportMetricsServiceRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*colmetricspb.ExportMetricsServiceRequest(nil), r.requests...)
}

// Headers returns the headers (gRPC metadata or HTTP headers, lower-cased
// keys) of each accepted request.
func (r *Receiver) Headers() []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]string(nil), r.headers...)
}

// Points flattens every accepted number data point.
func (r *Receiver) Points() []Point {
	var out []Point
	for _, req := range r.Requests() {
		for _, rm := range req.GetResourceMetrics() {
			res := flatten(rm.GetResource().GetAttributes())
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					sum := m.GetSum()
					if sum == nil {
						continue
					}
					for _, dp := range sum.GetDataPoints() {
						out = append(out, Point{
							Metric:    m.GetName(),
							Resource:  res,
							Attrs:     flatten(dp.GetAttributes()),
							Start:     time.Unix(0, int64(dp.GetStartTimeUnixNano())),
							End:       time.Unix(0, int64(dp.GetTimeUnixNano())),
							Value:     dp.GetAsInt(),
							Monotonic: sum.GetIsMonotonic(),
							Delta:     sum.GetAggregationTemporality() == 1,
						})
					}
				}
			}
		}
	}
	return out
}

// Sum adds the values of every accepted point of metric whose attributes
// include match.
func (r *Receiver) Sum(metric string, match map[string]string) int64 {
	var total int64
	for _, p := range r.Points() {
		if p.Metric == metric && contains(p.Attrs, match) {
			total += p.Value
		}
	}
	return total
}

func contains(attrs, match map[string]string) bool {
	for k, v := range match {
		if attrs[k] != v {
			return false
		}
	}
	return true
}

func flatten(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = valueString(kv.GetValue())
	}
	return m
}

// valueString renders scalars plainly ("7", "true", "0.5") and anything else
// in protobuf text form.
func valueString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	default:
		return strings.Join(strings.Fields(v.String()), " ")
	}
}

// admit waits out a hang and reports whether the request may be accepted.
func (r *Receiver) admit(ctx context.Context) bool {
	r.mu.Lock()
	r.attempts++
	hang, failing := r.hang, r.failing
	r.mu.Unlock()
	if hang > 0 {
		t := time.NewTimer(hang)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return !failing
}

func (r *Receiver) record(req *colmetricspb.ExportMetricsServiceRequest, headers map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, req)
	r.headers = append(r.headers, headers)
}

type grpcMetrics struct {
	colmetricspb.UnimplementedMetricsServiceServer
	r *Receiver
}

func (g *grpcMetrics) Export(ctx context.Context, req *colmetricspb.ExportMetricsServiceRequest) (*colmetricspb.ExportMetricsServiceResponse, error) {
	if !g.r.admit(ctx) {
		return nil, status.Error(codes.Unavailable, "otlptest: told to fail")
	}
	headers := map[string]string{}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for k, v := range md {
			headers[strings.ToLower(k)] = strings.Join(v, ",")
		}
	}
	g.r.record(req, headers)
	return &colmetricspb.ExportMetricsServiceResponse{}, nil
}

// serveOTLP answers OTLP/HTTP protobuf requests: each is decoded into a
// fresh newReq(), handed to record with its headers (lower-cased keys), and
// answered with resp.
func (r *Receiver) serveOTLP(newReq func() proto.Message, resp proto.Message, record func(proto.Message, map[string]string)) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if !r.admit(req.Context()) {
			http.Error(w, "otlptest: told to fail", http.StatusServiceUnavailable)
			return
		}
		msg := newReq()
		if err := proto.Unmarshal(body, msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		headers := map[string]string{}
		for k, v := range req.Header {
			headers[strings.ToLower(k)] = strings.Join(v, ",")
		}
		record(msg, headers)
		out, err := proto.Marshal(resp)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}
}

// LogRecord is one received log record, flattened.
type LogRecord struct {
	EventName string
	Resource  map[string]string
	Attrs     map[string]string
	Body      string
	Time      time.Time
	Severity  int32
}

// Logs flattens every accepted log record, in arrival order.
func (r *Receiver) Logs() []LogRecord {
	r.mu.Lock()
	reqs := append([]*collogspb.ExportLogsServiceRequest(nil), r.logs...)
	r.mu.Unlock()
	var out []LogRecord
	for _, req := range reqs {
		for _, rl := range req.GetResourceLogs() {
			res := flatten(rl.GetResource().GetAttributes())
			for _, sl := range rl.GetScopeLogs() {
				for _, lr := range sl.GetLogRecords() {
					out = append(out, LogRecord{
						EventName: lr.GetEventName(),
						Resource:  res,
						Attrs:     flatten(lr.GetAttributes()),
						Body:      valueString(lr.GetBody()),
						Time:      time.Unix(0, int64(lr.GetTimeUnixNano())),
						Severity:  int32(lr.GetSeverityNumber()),
					})
				}
			}
		}
	}
	return out
}

// LogRequests returns how many log requests were accepted.
func (r *Receiver) LogRequests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.logs)
}

func (r *Receiver) recordLogs(req *collogspb.ExportLogsServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, req)
}

type grpcLogs struct {
	collogspb.UnimplementedLogsServiceServer
	r *Receiver
}

func (g *grpcLogs) Export(ctx context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	if !g.r.admit(ctx) {
		return nil, status.Error(codes.Unavailable, "otlptest: told to fail")
	}
	g.r.recordLogs(req)
	return &collogspb.ExportLogsServiceResponse{}, nil
}
