package kvpb

import (
	"fmt"
	"testing"
)

// BenchmarkMethodSpanValidate measures what the router and replica do with
// every put batch before it reaches raft: each request's method and span,
// then Validate.
func BenchmarkMethodSpanValidate(b *testing.B) {
	for _, n := range []int{1, 100} {
		reqs := make([]*RequestUnion, n)
		for i := range reqs {
			reqs[i] = putReq(fmt.Sprintf("key-%012d", i), "value-of-some-hundred-bytes-value-of-some-hundred-bytes-value-of-some-hundred-bytes-value-of-som")
		}
		ba := batch(reqs...)
		b.Run(fmt.Sprintf("puts=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				for _, r := range ba.Requests {
					if MethodOf(r) != Put {
						b.Fatal("not a put")
					}
					if start, _ := Span(r); len(start) == 0 {
						b.Fatal("no key")
					}
				}
				if err := Validate(ba); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
