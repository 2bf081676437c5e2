package deadlock

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestDataDriven runs the scripts in testdata/. Each file starts with an
// empty Detector with a TTL of 10ms, at time 0. Commands:
//
//	new [ttl=<ms>]                  a fresh Detector
//	detect w=<id> h=<id> k=<key> [t=<ms>]   t: the time, default the last one given
//	remove w=<id> h=<id> k=<key>
//	cleanup txn=<id>
//	expire [t=<ms>]                 prints how many edges went
//	edges                           every recorded wait
//
// Rewrite the expected output with -rewrite.
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		d := mustNew(t, Options{TTL: 10 * time.Millisecond})
		var now time.Time
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			id := func(name string) TxnID {
				var v uint64
				td.ScanArgs(t, name, &v)
				return TxnID(v)
			}
			key := func() []byte {
				var k string
				td.ScanArgs(t, "k", &k)
				return []byte(k)
			}
			if td.HasArg("t") {
				var ms int
				td.ScanArgs(t, "t", &ms)
				now = time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond)
			}
			switch td.Cmd {
			case "new":
				ms := 10
				td.MaybeScanArgs(t, "ttl", &ms)
				d = mustNew(t, Options{TTL: time.Duration(ms) * time.Millisecond})
				return ""
			case "detect":
				if err := d.Detect(now, id("w"), id("h"), key()); err != nil {
					return err.Error() + "\n"
				}
				return "ok\n"
			case "remove":
				d.Remove(id("w"), id("h"), key())
				return ""
			case "cleanup":
				d.CleanUp(id("txn"))
				return ""
			case "expire":
				return fmt.Sprintf("expired %d\n", d.Expire(now))
			case "edges":
				var b strings.Builder
				for _, e := range d.Edges() {
					fmt.Fprintln(&b, e)
				}
				if b.Len() == 0 {
					return "none\n"
				}
				return b.String()
			default:
				td.Fatalf(t, "unknown command %q", td.Cmd)
				return ""
			}
		})
	})
}

func mustNew(t testing.TB, opts Options) *Detector {
	t.Helper()
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
