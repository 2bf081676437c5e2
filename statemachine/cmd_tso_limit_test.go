package statemachine

import (
	"testing"

	"github.com/strata-kv/strata/internal/kvpb"
)

func tsoLimit(limit uint64) *kvpb.RequestUnion {
	return &kvpb.RequestUnion{Value: &kvpb.RequestUnion_TsoLimit{TsoLimit: &kvpb.TSOLimitRequest{Limit: limit}}}
}

// TestApplyTSOLimit: the stored limit only rises, also within one command;
// the limit is refused outside the system group.
func TestApplyTSOLimit(t *testing.T) {
	a := &applier{t: t, db: openTestDB(t)}
	for _, tc := range []struct {
		writes []*kvpb.RequestUnion
		want   uint64 // the stored limit after, and the last answer
	}{
		{[]*kvpb.RequestUnion{tsoLimit(100)}, 100},
		{[]*kvpb.RequestUnion{tsoLimit(50)}, 100}, // a late save does not lower it
		{[]*kvpb.RequestUnion{tsoLimit(300), tsoLimit(200)}, 300},
		{[]*kvpb.RequestUnion{tsoLimit(301)}, 301},
	} {
		res, resps, _ := a.apply(testSysGroup, tc.writes...)
		if res.Err != nil {
			t.Fatalf("%v: %v", tc.writes, res.Err)
		}
		if got := resps[len(resps)-1].GetTsoLimit().GetLimit(); got != tc.want {
			t.Errorf("%v: answered %d, want %d", tc.writes, got, tc.want)
		}
		if got, err := LoadTSOLimit(a.db); err != nil || got != tc.want {
			t.Errorf("%v: stored %d (%v), want %d", tc.writes, got, err, tc.want)
		}
	}
	res, _, b := a.apply(testUserGroup, tsoLimit(1000))
	wantRefused(t, "tso limit in a user group", res, b, ErrWrongShard)
	if got, _ := LoadTSOLimit(a.db); got != 301 {
		t.Errorf("refused limit stored: %d", got)
	}
}
