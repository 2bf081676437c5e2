package elle_test

import (
	"fmt"

	"github.com/strata-kv/strata/linearizability/elle"
)

// A write skew: T0 and T1 both read x and y empty, then each appended to
// one of them; T2 read both afterwards.
func ExampleCheck() {
	h := elle.History{
		{Process: 0, Invoke: 0, Complete: 10, Status: elle.OK, Ops: []elle.Op{
			{Kind: elle.Read, Key: "x"}, {Kind: elle.Read, Key: "y"}, {Kind: elle.Append, Key: "x", Value: 1}}},
		{Process: 1, Invoke: 0, Complete: 10, Status: elle.OK, Ops: []elle.Op{
			{Kind: elle.Read, Key: "x"}, {Kind: elle.Read, Key: "y"}, {Kind: elle.Append, Key: "y", Value: 1}}},
		{Process: 2, Invoke: 20, Complete: 30, Status: elle.OK, Ops: []elle.Op{
			{Kind: elle.Read, Key: "x", List: []int{1}}, {Kind: elle.Read, Key: "y", List: []int{1}}}},
	}
	res, err := elle.Check(h, elle.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Print(res)
	// Output:
	// invalid: 3 transactions, 4 dependencies, 1 anomaly
	//   G2: a cycle with 2 anti-dependencies (rw): T0 -> T1 -> T0
	//     T0 -rw-> T1: T0 read "y" empty, and T1 appended 1, the next element: T0 did not see it
	//     T1 -rw-> T0: T1 read "x" empty, and T0 appended 1, the next element: T1 did not see it
}
