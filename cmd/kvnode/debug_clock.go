package main

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/txn/tso"
)

// envClockOffset=1 gives the timestamp oracle this node runs (while it
// leads the system shard) a wall clock with an adjustable offset, and
// serves it on the HTTP port (see debugClockHandler), so that a clock
// nemesis can jump the clock seconds forward and back without touching the
// machine's clock. The oracle must keep its timestamps rising whatever the
// offset does.
const envClockOffset = "STRATA_DEBUG_CLOCK_OFFSET"

// maxClockOffset bounds the offset: beyond it a clock is not skewed but
// broken.
const maxClockOffset = 24 * time.Hour

// applyClockOffsetEnv applies envClockOffset from getenv to opts,
// announcing it on log: it returns the clock the oracle reads, or nil when
// the hook is off.
func applyClockOffsetEnv(getenv func(string) string, log io.Writer, opts *strata.Options) (*tso.OffsetClock, error) {
	s := getenv(envClockOffset)
	if s == "" {
		return nil, nil
	}
	on, err := strconv.ParseBool(s)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: want 1 or 0", envClockOffset, s)
	}
	if !on {
		return nil, nil
	}
	clock := tso.NewOffsetClock(opts.Clock)
	opts.Clock = clock
	fmt.Fprintf(log, "%s%s=%s: the timestamp oracle's wall clock has an offset settable with PUT /debug/clock-offset?offset=DURATION on the HTTP port (for fault-injection tests only)\n",
		debugHookBanner, envClockOffset, s)
	return clock, nil
}

// debugClockHandler serves the clock offset: GET /debug/clock-offset
// answers {"offset": "1.5s"}; PUT /debug/clock-offset?offset=-3s sets it
// (a Go duration within ±maxClockOffset).
func debugClockHandler(clock *tso.OffsetClock) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/clock-offset", func(w http.ResponseWriter, _ *http.Request) {
		writeJSONStatus(w, http.StatusOK, map[string]any{"offset": clock.Offset().String()})
	})
	mux.HandleFunc("PUT /debug/clock-offset", func(w http.ResponseWriter, r *http.Request) {
		s := r.URL.Query().Get("offset")
		d, err := time.ParseDuration(s)
		if err != nil || d < -maxClockOffset || d > maxClockOffset {
			writeJSONStatus(w, http.StatusBadRequest, map[string]any{
				"error": fmt.Sprintf("offset=%q: want a duration within ±%v (e.g. -3s)", s, maxClockOffset)})
			return
		}
		clock.SetOffset(d)
		writeJSONStatus(w, http.StatusOK, map[string]any{"offset": d.String()})
	})
	return mux
}
