package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestHandlerServesThePage(t *testing.T) {
	client := filepath.Join(t.TempDir(), "track.js")
	require.NoError(t, os.WriteFile(client, []byte("window.track={};"), 0o600))
	h, err := handler(client, config{Endpoint: "http://collector.test:4319", Service: "web-signup"})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()

	for _, tc := range []struct {
		path, contains string
		status         int
	}{
		{"/signup", `src="/track.js"`, http.StatusOK},
		{"/signup/payment", `data-track="pay"`, http.StatusOK}, // a step loaded directly
		{"/config.js", `"endpoint":"http://collector.test:4319"`, http.StatusOK},
		{"/track.js", "window.track", http.StatusOK},
		{"/static/app.js", "track.init", http.StatusOK},
		{"/", "", http.StatusOK}, // redirected to /signup
		{"/admin", "", http.StatusNotFound},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tc.path)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Contains(t, string(body), tc.contains)
		})
	}
}
