package track

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
)

// otlpTarget is where and how one signal is exported, resolved from the
// options, then the OTEL_* variables, then the defaults.
type otlpTarget struct {
	protocol string
	// Exactly one of url and hostPort is set.
	url      string
	hostPort string // sent in plaintext
	headers  map[string]string
}

// resolveTarget resolves the target of signal ("METRICS" or "LOGS"), whose
// OTLP HTTP path is signalPath.
//
// The endpoint comes from WithEndpoint, else OTEL_EXPORTER_OTLP_<signal>_ENDPOINT,
// else OTEL_EXPORTER_OTLP_ENDPOINT, else plaintext localhost:4317 (gRPC) or
// localhost:4318 (HTTP). Each is either a URL with an http or https scheme
// (https means TLS), or a plain host:port sent in plaintext, as WithEndpoint
// has always taken it: the OpenTelemetry specification asks for a URL in
// the variables, but a host:port there is a common mistake with one sensible
// reading. Anything else (no host, a port outside 1-65535, another scheme)
// is refused with ErrInvalidOption naming the option or variable: track
// never falls back to another endpoint.
//
// Over HTTP, paths follow the specification: the generic variable is a base
// URL to which the signal's path is appended; a per-signal variable is used
// as is (an empty path meaning "/"); a WithEndpoint URL without a path gets
// the signal's path; a host:port gets the signal's path.
func resolveTarget(cfg config, signal, signalPath string) (otlpTarget, error) {
	t := otlpTarget{protocol: cfg.protocol, headers: cfg.headers}
	if t.protocol == "" {
		t.protocol = firstEnv("OTEL_EXPORTER_OTLP_"+signal+"_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if t.protocol == "" {
		t.protocol = ProtocolGRPC
	}
	if t.protocol != ProtocolGRPC && t.protocol != ProtocolHTTPProtobuf {
		return t, fmt.Errorf("%w: OTLP protocol %q is not %q or %q", ErrInvalidOption, t.protocol, ProtocolGRPC, ProtocolHTTPProtobuf)
	}

	source, endpoint := "WithEndpoint", cfg.endpoint
	perSignal := false
	if endpoint == "" {
		for _, name := range []string{"OTEL_EXPORTER_OTLP_" + signal + "_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
			// The exporters trim the variables too.
			if v := strings.TrimSpace(os.Getenv(name)); v != "" {
				source, endpoint, perSignal = name, v, name != "OTEL_EXPORTER_OTLP_ENDPOINT"
				break
			}
		}
	}
	if endpoint == "" {
		endpoint = "localhost:4317"
		if t.protocol == ProtocolHTTPProtobuf {
			endpoint = "localhost:4318"
		}
	}
	invalid := func(reason string) error {
		return fmt.Errorf("%w: %s=%q: %s", ErrInvalidOption, source, endpoint, reason)
	}

	if !strings.Contains(endpoint, "://") {
		if err := checkHostPort(endpoint); err != nil {
			return t, invalid(err.Error() + `; want host:port (plaintext) or a URL such as "https://collector:4317"`)
		}
		if t.protocol == ProtocolHTTPProtobuf {
			// As a URL, so that the path is set too: the exporter, reading
			// "localhost:4318" from a per-signal variable as a URL of scheme
			// "localhost", would otherwise post to "/".
			t.url = (&url.URL{Scheme: "http", Host: endpoint, Path: signalPath}).String()
		} else {
			t.hostPort = endpoint
		}
		return t, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return t, invalid(err.Error())
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return t, invalid(fmt.Sprintf("scheme %q is not http or https", u.Scheme))
	}
	hostPort := u.Host
	if u.Port() == "" {
		hostPort = net.JoinHostPort(u.Hostname(), "443")
		if u.Scheme == "http" {
			hostPort = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	if err := checkHostPort(hostPort); err != nil {
		return t, invalid(err.Error())
	}
	if t.protocol == ProtocolHTTPProtobuf {
		switch {
		case source == "OTEL_EXPORTER_OTLP_ENDPOINT":
			u.Path = path.Join(u.Path, signalPath)
		case perSignal:
			if u.Path == "" {
				u.Path = "/"
			}
		case u.Path == "" || u.Path == "/":
			u.Path = signalPath
		}
	}
	t.url = u.String()
	return t, nil
}

// checkHostPort accepts a non-empty host and a port from 1 to 65535.
func checkHostPort(hostPort string) error {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("empty host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}
