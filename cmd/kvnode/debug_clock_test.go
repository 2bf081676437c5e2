package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strata-kv/strata"
)

// TestClockOffsetHook: STRATA_DEBUG_CLOCK_OFFSET=1 gives the oracle an
// offset clock, announced on stderr, that PUT /debug/clock-offset moves;
// without the hook the endpoint does not exist; bad values are refused.
func TestClockOffsetHook(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == envClockOffset {
				return v
			}
			return ""
		}
	}
	var opts strata.Options
	if c, err := applyClockOffsetEnv(env(""), io.Discard, &opts); c != nil || err != nil || opts.Clock != nil {
		t.Fatalf("hook off: %v, %v, Clock %v", c, err, opts.Clock)
	}
	if _, err := applyClockOffsetEnv(env("yes please"), io.Discard, &opts); err == nil {
		t.Fatal("a bad value was accepted")
	}
	var log strings.Builder
	clock, err := applyClockOffsetEnv(env("1"), &log, &opts)
	if err != nil || clock == nil || opts.Clock != clock || !strings.Contains(log.String(), debugHookBanner) {
		t.Fatalf("hook on: %v, %v, Clock %v, log %q", clock, err, opts.Clock, log.String())
	}

	for _, on := range []bool{false, true} {
		n := &node{}
		if on {
			n.clock = clock
		}
		srv := httptest.NewServer(n.httpHandler(prometheus.NewRegistry()))
		put := func(offset string) int {
			req, _ := http.NewRequest(http.MethodPut, srv.URL+"/debug/clock-offset?offset="+offset, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if !on {
			if code := put("1s"); code != http.StatusNotFound {
				t.Errorf("hook off: PUT = %d, want 404", code)
			}
			srv.Close()
			continue
		}
		if code := put("-3s"); code != http.StatusOK || clock.Offset() != -3*time.Second {
			t.Errorf("PUT -3s = %d, offset %v", code, clock.Offset())
		}
		if code := put("100h"); code != http.StatusBadRequest || clock.Offset() != -3*time.Second {
			t.Errorf("PUT 100h = %d, offset %v", code, clock.Offset())
		}
		resp, err := http.Get(srv.URL + "/debug/clock-offset")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `"-3s"`) {
			t.Errorf("GET = %s", body)
		}
		srv.Close()
	}
}
