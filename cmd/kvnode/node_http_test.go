package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPprofFlag: the profiler is served under /debug/pprof/ with --pprof
// and not at all without it.
func TestPprofFlag(t *testing.T) {
	for _, on := range []bool{false, true} {
		n := &node{cfg: startConfig{Pprof: on}}
		srv := httptest.NewServer(n.httpHandler(prometheus.NewRegistry()))
		for path, want := range map[string]int{"/debug/pprof/": http.StatusOK, "/debug/pprof/cmdline": http.StatusOK, "/livez": http.StatusOK} {
			if !on && path != "/livez" {
				want = http.StatusNotFound
			}
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("pprof %v: GET %s = %d, want %d", on, path, resp.StatusCode, want)
			}
		}
		srv.Close()
	}
}
