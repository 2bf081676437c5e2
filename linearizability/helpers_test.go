package linearizability

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// Builders for hand-written histories. Times are arbitrary integers.

func val(s string) *string { return &s }

func put(client int, key, value string, call, ret int64) Operation {
	return Operation{ClientID: client, Input: Input{Kind: KindPut, Key: key, Value: value}, Call: call, Return: ret}
}

// get records a read of value; nil means the key was read as absent.
func get(client int, key string, value *string, call, ret int64) Operation {
	return Operation{ClientID: client, Input: Input{Kind: KindGet, Key: key}, Output: Output{Value: value}, Call: call, Return: ret}
}

func del(client int, key string, call, ret int64) Operation {
	return Operation{ClientID: client, Input: Input{Kind: KindDelete, Key: key}, Call: call, Return: ret}
}

// cas records a compare-and-swap; old nil means "key absent".
func cas(client int, key string, old *string, new string, ok bool, call, ret int64) Operation {
	return Operation{ClientID: client, Input: Input{Kind: KindCAS, Key: key, Old: old, Value: new}, Output: Output{OK: ok}, Call: call, Return: ret}
}

// ambiguous marks op as failed ambiguously; ret stays as when it gave up.
func ambiguous(op Operation) Operation {
	op.Output = Output{Ambiguous: true}
	return op
}

// testSeeds returns n seeds to run, or just the one in STRATA_SEED. Every
// seed is logged by the caller so a failure can be reproduced.
func testSeeds(t testing.TB, n int) []uint64 {
	t.Helper()
	if s := os.Getenv("STRATA_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("STRATA_SEED=%q: %v", s, err)
		}
		return []uint64{seed}
	}
	base := uint64(time.Now().UnixNano())
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = base + uint64(i)
	}
	return seeds
}
