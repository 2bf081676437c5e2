package deadlock_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/strata-kv/strata/txn/deadlock"
)

// Two transactions lock two keys in opposite orders.
func ExampleDetector() {
	d, err := deadlock.New(deadlock.Options{})
	if err != nil {
		panic(err)
	}
	now := time.Now()
	// Txn 1 holds a and waits for b, held by txn 2.
	fmt.Println(d.Detect(now, 1, 2, []byte("b")))
	// Txn 2 now waits for a: the cycle closes and txn 2 is the victim.
	err = d.Detect(now, 2, 1, []byte("a"))
	var de *deadlock.DeadlockError
	if errors.As(err, &de) {
		fmt.Println("victim", de.Victim, "cycle", de.Cycle)
	}
	// Txn 2 aborts and releases b; txn 1 gets it and stops waiting.
	d.CleanUp(2)
	fmt.Println(d.Len(), "edges")
	// Output:
	// <nil>
	// victim 2 cycle [2 -> 1 on "a" 1 -> 2 on "b"]
	// 0 edges
}
