package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readyWait is how long /readyz lets a replica catch up with the commit
// index it knew when the request came, so that readiness does not flicker
// under load while a replica applies what it just learned.
const readyWait = 200 * time.Millisecond

// httpHandler serves /livez, /readyz and /metrics, and with --pprof Go's
// profiler under /debug/pprof/.
func (n *node) httpHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		writeJSONStatus(w, http.StatusOK, map[string]any{"live": true})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, body := n.readiness()
		code := http.StatusOK
		if !ok {
			code = http.StatusServiceUnavailable
		}
		writeJSONStatus(w, code, body)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if n.cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	if n.clock != nil {
		mux.Handle("/debug/clock-offset", debugClockHandler(n.clock))
	}
	return mux
}

// readyBody is /readyz's answer.
type readyBody struct {
	Ready    bool            `json:"ready"`
	Reason   string          `json:"reason,omitempty"`
	Replicas int             `json:"replicas"`
	NotReady []shardNotReady `json:"not_ready,omitempty"`
}

type shardNotReady struct {
	Shard  uint64 `json:"shard"`
	Reason string `json:"reason"`
}

// readiness tells whether every local replica knows a leader and has
// applied up to the commit index it knows, and if not which is behind.
func (n *node) readiness() (bool, readyBody) {
	if n.draining.Load() {
		return false, readyBody{Reason: "shutting down"}
	}
	if len(n.db.Shards()) == 0 {
		return false, readyBody{Reason: "not joined to a cluster yet"}
	}
	rn := n.db.Node()
	groups := rn.Groups()
	body := readyBody{Replicas: len(groups)}
	// A replica is caught up once it has applied the commit index seen at
	// the first look; it gets readyWait to get there.
	want := map[uint64]uint64{}
	deadline := time.Now().Add(readyWait)
	for {
		body.NotReady = body.NotReady[:0]
		for _, g := range groups {
			st, err := rn.Status(g)
			if err != nil {
				continue // removed meanwhile
			}
			if _, ok := want[g]; !ok {
				want[g] = st.Commit
			}
			switch {
			case st.Leader == 0:
				body.NotReady = append(body.NotReady, shardNotReady{Shard: g, Reason: "no leader"})
			case st.Applied < want[g]:
				body.NotReady = append(body.NotReady, shardNotReady{Shard: g, Reason: fmt.Sprintf("applied %d of commit %d", st.Applied, want[g])})
			}
		}
		if len(body.NotReady) == 0 {
			body.Ready = true
			return true, body
		}
		if time.Now().After(deadline) {
			return false, body
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeJSONStatus(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
