// Command page serves the web-signup example as a real page: a four-step sign-up form (a
// single-page app on the History API) that reports what visitors do with track's browser client
// (web/dist/track.js) to the collector's browser endpoint. Its funnel is the one the README
// queries: signup_start → signup_profile → signup_payment → signup_complete.
//
// Usage (after `make web collector`, with the collector on examples/collector.yaml):
//
//	go run ./examples/web-signup/page -addr localhost:8080 -endpoint http://localhost:4319
//
// The page's origin (http://localhost:8080 here) must be in the collector's
// TRACK_WEB_ALLOWED_ORIGIN. A second address (-also) serves the same page from another origin,
// for showing that an origin the collector does not allow is refused.
package main

import (
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

//go:embed static
var static embed.FS

// config is what the page's script reads from /config.js.
type config struct {
	Endpoint string `json:"endpoint"`
	Service  string `json:"service"`
}

// handler serves the page's files, the client script and /config.js. Every path under /signup
// serves index.html, so the form's steps can be loaded directly.
func handler(client string, cfg config) (http.Handler, error) {
	files, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(files)))
	mux.HandleFunc("GET /track.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFile(w, r, client)
	})
	mux.HandleFunc("GET /config.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, "window.SIGNUP_CONFIG = %s;\n", js)
	})
	page := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(index)
	}
	mux.HandleFunc("GET /signup", page)
	mux.HandleFunc("GET /signup/", page)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/signup", http.StatusFound)
	})
	return mux, nil
}

func main() {
	addr := flag.String("addr", "localhost:8080", "listen address of the page")
	also := flag.String("also", "", "a second listen address serving the same page (another origin)")
	endpoint := flag.String("endpoint", "http://localhost:4319", "the collector's browser endpoint (TRACK_WEB_ENDPOINT)")
	service := flag.String("service", "web-signup", "service.name of the page's events")
	client := flag.String("client", "web/dist/track.js", "the built client (make web)")
	flag.Parse()
	if _, err := os.Stat(*client); err != nil {
		log.Fatalf("page: the client script %s is missing (run `make web`, or set -client): %v", *client, err)
	}
	abs, err := filepath.Abs(*client)
	if err != nil {
		log.Fatalf("page: %v", err)
	}
	h, err := handler(abs, config{Endpoint: strings.TrimSuffix(*endpoint, "/"), Service: *service})
	if err != nil {
		log.Fatalf("page: %v", err)
	}
	addrs := []string{*addr}
	if *also != "" {
		addrs = append(addrs, *also)
	}
	var servers []*http.Server
	errc := make(chan error, len(addrs))
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			log.Fatalf("page: %v", err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		// The line tests wait for: one per address, with the address actually bound.
		fmt.Printf("page: serving http://%s/signup\n", l.Addr())
		go func() { errc <- srv.Serve(l) }()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sig:
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Printf("page: %v", err)
		}
	}
	for _, s := range servers {
		_ = s.Close()
	}
}
