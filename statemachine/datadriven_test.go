package statemachine

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/internal/kvpb"
	"github.com/strata-kv/strata/mvcc"
	"github.com/strata-kv/strata/raftnode"
	"github.com/strata-kv/strata/storage"
	"google.golang.org/protobuf/proto"
)

// TestDataDriven runs the scripts in testdata/. Each file starts with an
// empty store and KV{} (system group 1). Commands:
//
//	apply group=<id> [version=<v>] [span=(<start>,<end>)]
//	<one write a line>
//	    Applies one command of the writes below it, in one batch, at
//	    version v (default: one more than the last), in a group spanning
//	    all user data and its replicated state (all system data for group
//	    1), or the user keys [start, end) and its state. Writes:
//	      put <key> <value>
//	      del <key>
//	      cas <key> <old> <new>     - for an unset old or new
//	      sysput <key> <value>
//	      sysdel <key>
//	      gc <threshold> <max versions> [<from>]
//	eval [ts=<ts>] [keys=<n>] [bytes=<n>]
//	<one read a line>
//	    Evaluates the reads below it in order at ts (default 0: the newest)
//	    under one Budget, and prints what is left of it. Reads:
//	      get <key>
//	      scan <start> <end> [limit=<n>] [keys-only]
//	      sysscan <start> <end>
//	    where a start of - is the first key and an end of - is unset.
//	dump
//	    Prints every user version and system key.
//
// Keys and values are Go string literals, without the quotes unless they
// are empty (""); \x00 is a zero byte. Rewrite the expected output with -rewrite.
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		db := openTestDB(t)
		var kv KV
		version := uint64(0)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "apply":
				return ddApply(t, d, db, &kv, &version)
			case "eval":
				return ddEval(t, d, db)
			case "dump":
				return ddDump(t, db)
			}
			d.Fatalf(t, "unknown command %q", d.Cmd)
			return ""
		})
	})
}

// ddLines returns the input lines of d, split into fields and unquoted.
// The field "-" stays "-".
func ddLines(t *testing.T, d *datadriven.TestData) [][]string {
	var out [][]string
	for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		f := strings.Fields(line)
		for i, s := range f {
			if !strings.HasPrefix(s, `"`) {
				s = `"` + s + `"`
			}
			u, err := strconv.Unquote(s)
			if err != nil {
				d.Fatalf(t, "%q: %v", s, err)
			}
			f[i] = u
		}
		if len(f) > 0 {
			out = append(out, f)
		}
	}
	return out
}

func ddArgs(t *testing.T, d *datadriven.TestData, f []string, n int) {
	if len(f) < n+1 {
		d.Fatalf(t, "%s needs %d arguments: %q", f[0], n, f)
	}
}

// optional returns nil for "-", else s.
func optional(s string) []byte {
	if s == "-" {
		return nil
	}
	return []byte(s)
}

func ddApply(t *testing.T, d *datadriven.TestData, db *pebble.DB, kv *KV, version *uint64) string {
	var group uint64
	d.ScanArgs(t, "group", &group)
	*version++
	d.MaybeScanArgs(t, "version", version)
	e := raftnode.Entry{Group: group, Index: *version, Spans: spansOf(group, 1)}
	if d.HasArg("span") {
		var start, end string
		d.ScanArgs(t, "span", &start, &end)
		lo, hi := mvcc.Span([]byte(start), []byte(end))
		e.Spans[0] = raftnode.Span{Start: lo, End: hi}
	}
	var writes []*kvpb.RequestUnion
	for _, f := range ddLines(t, d) {
		switch f[0] {
		case "put":
			ddArgs(t, d, f, 2)
			writes = append(writes, put(f[1], f[2]))
		case "del":
			ddArgs(t, d, f, 1)
			writes = append(writes, del(f[1]))
		case "cas":
			ddArgs(t, d, f, 3)
			writes = append(writes, cas(f[1], optional(f[2]), optional(f[3])))
		case "sysput":
			ddArgs(t, d, f, 2)
			writes = append(writes, sysPut(f[1], f[2]))
		case "sysdel":
			ddArgs(t, d, f, 1)
			writes = append(writes, sysDel(f[1]))
		case "gc":
			ddArgs(t, d, f, 2)
			var n [2]uint64
			for i := range n {
				var err error
				if n[i], err = strconv.ParseUint(f[1+i], 10, 64); err != nil {
					d.Fatalf(t, "gc %s: %v", f[1+i], err)
				}
			}
			w := gcReq(n[0], n[1])
			if len(f) > 3 {
				w.GetGc().From = []byte(f[3])
			}
			writes = append(writes, w)
		default:
			d.Fatalf(t, "unknown write %q", f[0])
		}
	}
	data, err := kvpb.EncodeCommand(&kvpb.ReplicatedCommand{Header: &kvpb.Header{Timestamp: *version}, Writes: writes})
	if err != nil {
		d.Fatalf(t, "%v", err)
	}
	b := db.NewIndexedBatch()
	defer b.Close()
	res, err := kv.Apply(b, e, data)
	if err != nil {
		d.Fatalf(t, "storage error: %v", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		d.Fatalf(t, "%v", err)
	}
	if res.Err != nil {
		kind := "other"
		switch {
		case errors.Is(res.Err, ErrBadCommand):
			kind = "ErrBadCommand"
		case errors.Is(res.Err, ErrWrongShard):
			kind = "ErrWrongShard"
		}
		wrote := ""
		if !b.Empty() {
			wrote = " BUT WROTE"
		}
		return fmt.Sprintf("refused (%s)%s: %v\n", kind, wrote, res.Err)
	}
	var br kvpb.BatchResponse
	if err := proto.Unmarshal(res.Data, &br); err != nil {
		d.Fatalf(t, "%v", err)
	}
	var sb strings.Builder
	for _, r := range br.Responses {
		switch v := r.Value.(type) {
		case *kvpb.ResponseUnion_Cas:
			fmt.Fprintf(&sb, "cas swapped=%v\n", v.Cas.GetSwapped())
		case *kvpb.ResponseUnion_Gc:
			fmt.Fprintf(&sb, "gc threshold=%d removed=%d", v.Gc.GetThreshold(), v.Gc.GetRemoved())
			if v.Gc.ResumeKey != nil {
				fmt.Fprintf(&sb, " resume=%q", v.Gc.ResumeKey)
			}
			sb.WriteString("\n")
		default:
			fmt.Fprintf(&sb, "%v ok\n", kvpb.ResponseMethodOf(r))
		}
	}
	return sb.String()
}

func ddEval(t *testing.T, d *datadriven.TestData, db *pebble.DB) string {
	var ts uint64
	d.MaybeScanArgs(t, "ts", &ts)
	budget := &Budget{}
	d.MaybeScanArgs(t, "keys", &budget.Keys)
	d.MaybeScanArgs(t, "bytes", &budget.Bytes)
	var sb strings.Builder
	for _, f := range ddLines(t, d) {
		var req *kvpb.RequestUnion
		switch f[0] {
		case "get":
			ddArgs(t, d, f, 1)
			req = get(f[1])
		case "scan":
			ddArgs(t, d, f, 2)
			end := f[2]
			if end == "-" {
				end = ""
			}
			var limit uint64
			keysOnly := false
			for _, o := range f[3:] {
				switch {
				case o == "keys-only":
					keysOnly = true
				case strings.HasPrefix(o, "limit="):
					var err error
					if limit, err = strconv.ParseUint(strings.TrimPrefix(o, "limit="), 10, 32); err != nil {
						d.Fatalf(t, "%s: %v", o, err)
					}
				default:
					d.Fatalf(t, "unknown scan option %q", o)
				}
			}
			req = scan(string(optional(f[1])), end, uint32(limit), keysOnly)
		case "sysscan":
			ddArgs(t, d, f, 2)
			req = sysScan(string(optional(f[1])), optional(f[2]))
		default:
			d.Fatalf(t, "unknown read %q", f[0])
		}
		resp, err := Eval(db, &kvpb.Header{Timestamp: ts}, req, budget)
		if err != nil {
			fmt.Fprintf(&sb, "%s: error: %v\n", f[0], err)
			continue
		}
		switch v := resp.Value.(type) {
		case *kvpb.ResponseUnion_Get:
			if v.Get.GetFound() {
				fmt.Fprintf(&sb, "get %q: %q\n", f[1], v.Get.GetValue())
			} else {
				fmt.Fprintf(&sb, "get %q: not found\n", f[1])
			}
		case *kvpb.ResponseUnion_Scan:
			fmt.Fprintf(&sb, "scan:")
			for _, kv := range v.Scan.GetKvs() {
				fmt.Fprintf(&sb, " %q=%q", kv.Key, kv.Value)
			}
			if v.Scan.ResumeKey != nil {
				fmt.Fprintf(&sb, " resume=%q", v.Scan.ResumeKey)
			}
			sb.WriteString("\n")
		case *kvpb.ResponseUnion_SystemScan:
			fmt.Fprintf(&sb, "sysscan:")
			for _, kv := range v.SystemScan.GetKvs() {
				fmt.Fprintf(&sb, " %q=%q", kv.Key, kv.Value)
			}
			sb.WriteString("\n")
		}
	}
	fmt.Fprintf(&sb, "budget left: keys=%d bytes=%d exhausted=%v\n", budget.Keys, budget.Bytes, budget.Exhausted())
	return sb.String()
}

func ddDump(t *testing.T, db *pebble.DB) string {
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var sb strings.Builder
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		switch k[0] {
		case storage.PrefixSystem:
			fmt.Fprintf(&sb, "system %q = %q\n", k[1:], it.Value())
		case storage.PrefixUser:
			uk, v, err := mvcc.DecodeKey(k)
			if err != nil {
				t.Fatal(err)
			}
			val, deleted, err := mvcc.DecodeValue(it.Value())
			if err != nil {
				t.Fatal(err)
			}
			if deleted {
				fmt.Fprintf(&sb, "%q @%d tombstone\n", uk, v)
			} else {
				fmt.Fprintf(&sb, "%q @%d = %q\n", uk, v, val)
			}
		case storage.PrefixGroup:
			fmt.Fprintf(&sb, "group state %x = %x\n", k[1:], it.Value())
		default:
			fmt.Fprintf(&sb, "other %x\n", k)
		}
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	if sb.Len() == 0 {
		return "(empty)\n"
	}
	return sb.String()
}
