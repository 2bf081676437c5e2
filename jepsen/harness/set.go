package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/strata-kv/strata/client"
)

// Set is the set workload: every add is a put of a new key under a prefix
// (the element is the key); a final scan must contain every acknowledged
// add, no element that was never attempted, and no add the client said
// certainly failed.
type Set struct {
	mu struct {
		sync.Mutex
		attempted map[string]Outcome // element -> outcome of its add
	}
	present  map[string]bool
	finalErr error
}

var _ Workload = (*Set)(nil)

// Name implements Workload.
func (s *Set) Name() string { return "set" }

func setPrefix(p string) string { return p + "set/" }

// Run implements Workload.
func (s *Set) Run(ctx context.Context, env *Env) error {
	s.mu.Lock()
	if s.mu.attempted == nil {
		s.mu.attempted = map[string]Outcome{}
	}
	s.mu.Unlock()
	prefixes := env.Prefixes
	if len(prefixes) == 0 {
		prefixes = []string{""}
	}
	return runClients(env.Clients, func(i int) error {
		gc, err := env.newClient(i)
		if err != nil {
			return err
		}
		defer gc.Close()
		for n := 0; ctx.Err() == nil; n++ {
			elem := fmt.Sprintf("%sc%03d-%07d", setPrefix(prefixes[(i+n)%len(prefixes)]), i, n)
			opCtx, cancel := context.WithTimeout(context.Background(), env.OpTimeout)
			err := gc.Put(opCtx, []byte(elem), []byte{'1'})
			cancel()
			env.Stats.Record(s.Name(), err, true)
			s.mu.Lock()
			s.mu.attempted[elem] = OutcomeOf(err, true)
			s.mu.Unlock()
		}
		return nil
	})
}

// Final implements Workload: it scans every prefix's elements, retrying
// until the scan succeeds.
func (s *Set) Final(ctx context.Context, env *Env) error {
	gc, err := client.New(client.Config{Endpoints: env.Endpoints, DialTimeout: env.OpTimeout})
	if err != nil {
		return err
	}
	defer gc.Close()
	s.present = map[string]bool{}
	prefixes := env.Prefixes
	if len(prefixes) == 0 {
		prefixes = []string{""}
	}
	for _, p := range prefixes {
		start := setPrefix(p)
		end := start[:len(start)-1] + "0" // "…set0": just after every "…set/…"
		for {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			keys, err := gc.ScanKeys(sctx, []byte(start), []byte(end), 0)
			cancel()
			env.Stats.Record(s.Name()+"-final", err, false)
			if err == nil {
				for _, k := range keys {
					s.present[string(k)] = true
				}
				break
			}
			if ctx.Err() != nil {
				s.finalErr = fmt.Errorf("jepsen: set: final scan of %q: %w", start, err)
				return s.finalErr
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}

// setReport is set.json.
type setReport struct {
	Attempted   int      `json:"attempted"`
	Acked       int      `json:"acknowledged"`
	Failed      int      `json:"failed_definitely"`
	Ambiguous   int      `json:"ambiguous"`
	Present     int      `json:"present"`
	AmbiguousIn int      `json:"ambiguous_present"`
	Lost        []string `json:"lost"`
	Phantom     []string `json:"phantom"`
	Resurrected []string `json:"resurrected"`
}

// Check implements Workload.
func (s *Set) Check(env *Env) CheckResult {
	s.mu.Lock()
	attempted := s.mu.attempted
	s.mu.Unlock()
	var rep setReport
	rep.Attempted = len(attempted)
	for e, o := range attempted {
		switch o {
		case OK:
			rep.Acked++
			if !s.present[e] {
				rep.Lost = append(rep.Lost, e)
			}
		case Fail:
			rep.Failed++
			if s.present[e] {
				rep.Resurrected = append(rep.Resurrected, e)
			}
		case Info:
			rep.Ambiguous++
			if s.present[e] {
				rep.AmbiguousIn++
			}
		}
	}
	for e := range s.present {
		if _, ok := attempted[e]; !ok {
			rep.Phantom = append(rep.Phantom, e)
		}
	}
	rep.Present = len(s.present)
	slices.Sort(rep.Lost)
	slices.Sort(rep.Phantom)
	slices.Sort(rep.Resurrected)
	out := CheckResult{Workload: s.Name(), Details: map[string]any{
		"attempted": rep.Attempted, "acknowledged": rep.Acked, "failed": rep.Failed,
		"ambiguous": rep.Ambiguous, "ambiguous_present": rep.AmbiguousIn, "present": rep.Present,
		"lost": len(rep.Lost), "phantom": len(rep.Phantom), "resurrected": len(rep.Resurrected),
	}}
	path := filepath.Join(env.Dir, "set.json")
	if b, err := json.MarshalIndent(rep, "", "  "); err == nil {
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err == nil {
			out.Details["report"] = path
		}
	}
	switch {
	case len(rep.Lost)+len(rep.Phantom)+len(rep.Resurrected) > 0:
		out.Valid = ValidViolation
		out.Summary = fmt.Sprintf("SET VIOLATION: %d acknowledged adds lost, %d phantom elements, %d adds reported failed but present (first: %s)",
			len(rep.Lost), len(rep.Phantom), len(rep.Resurrected), first(rep.Lost, rep.Phantom, rep.Resurrected))
	case s.present == nil || s.finalErr != nil:
		out.Valid = ValidUnknown
		out.Summary = fmt.Sprintf("no final read: %v", s.finalErr)
	default:
		out.Valid = ValidOK
		out.Summary = fmt.Sprintf("%d acknowledged adds all present; %d of %d ambiguous adds present; no phantoms",
			rep.Acked, rep.AmbiguousIn, rep.Ambiguous)
	}
	return out
}

func first(lists ...[]string) string {
	for _, l := range lists {
		if len(l) > 0 {
			return l[0]
		}
	}
	return "-"
}
