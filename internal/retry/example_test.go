package retry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strata-kv/strata/internal/retry"
)

var errNotLeader = errors.New("not leader")

func ExampleStart() {
	ctx := context.Background()
	attempts := 0
	try := func() error { // fails twice, then succeeds
		if attempts++; attempts < 3 {
			return errNotLeader
		}
		return nil
	}
	var err error
	for r := retry.Start(ctx, retry.Options{Initial: time.Microsecond, MaxAttempts: 5}); r.Next(); {
		if err = try(); err == nil {
			break
		}
	}
	fmt.Println(attempts, err)
	// Output: 3 <nil>
}

func ExampleDo() {
	err := retry.Do(context.Background(), retry.Options{Initial: time.Microsecond, MaxAttempts: 2},
		func(ctx context.Context) error { return errNotLeader })
	fmt.Println(errors.Is(err, errNotLeader), errors.Is(err, retry.ErrExhausted))
	// Output: true true
}
