package tso_test

import (
	"context"
	"fmt"
	"time"

	"github.com/strata-kv/strata/txn/tso"
)

func ExampleParse() {
	ts := tso.New(uint64(time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC).UnixMilli()), 5)
	fmt.Println(ts, ts.WallTime().Format(time.RFC3339))
	for _, s := range []string{ts.String(), fmt.Sprint(uint64(ts)), "2026-12-03T13:00:00Z"} {
		got, err := tso.Parse(s)
		fmt.Println(got, err)
	}
	// Output:
	// 1796302800000.5 2026-12-03T13:00:00Z
	// 1796302800000.5 <nil>
	// 1796302800000.5 <nil>
	// 1796302800000.0 <nil>
}

// limitStore is a Persister in memory; a cluster saves the limit through
// raft on the system shard.
type limitStore struct{ limit tso.Timestamp }

func (s *limitStore) LoadLimit(context.Context) (tso.Timestamp, error) { return s.limit, nil }
func (s *limitStore) SaveLimit(_ context.Context, l tso.Timestamp) error {
	s.limit = max(s.limit, l)
	return nil
}

func ExampleClient() {
	ctx := context.Background()
	oracle, err := tso.Open(ctx, &limitStore{}, tso.OracleOptions{})
	if err != nil {
		panic(err)
	}
	defer oracle.Close()
	client := tso.NewClient(tso.FetcherFunc(oracle.Next))
	defer client.Close()
	a, _ := client.Get(ctx)
	b, _ := client.Get(ctx)
	fmt.Println(a < b)
	// Output: true
}
