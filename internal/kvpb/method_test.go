package kvpb

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/strata-kv/strata/api"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// unionCases returns, for each case of msg's oneof "value", a message with
// just that case set (to an empty value), found by reflection so that a
// case added to kvpb.proto shows up here without editing the test.
func unionCases(t *testing.T, msg protoreflect.ProtoMessage) map[protoreflect.FieldNumber]protoreflect.Message {
	t.Helper()
	oneof := msg.ProtoReflect().Descriptor().Oneofs().ByName("value")
	if oneof == nil {
		t.Fatalf("%s has no oneof value", msg.ProtoReflect().Descriptor().FullName())
	}
	out := map[protoreflect.FieldNumber]protoreflect.Message{}
	for i := 0; i < oneof.Fields().Len(); i++ {
		fd := oneof.Fields().Get(i)
		m := msg.ProtoReflect().Type().New()
		m.Set(fd, m.NewField(fd))
		out[fd.Number()] = m
	}
	return out
}

// TestEveryUnionCaseHasFlags fails when a RequestUnion case has no flags
// option, is not its own method (its field number) to MethodOf, or has no
// ResponseUnion case of the same name and number that ResponseMethodOf
// maps back to it.
func TestEveryUnionCaseHasFlags(t *testing.T) {
	reqs := unionCases(t, &RequestUnion{})
	resps := unionCases(t, &ResponseUnion{})
	var nums []Method
	for num, m := range reqs {
		fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("value"))
		if f, _ := proto.GetExtension(fd.Options(), E_Flags).([]MethodFlag); len(f) == 0 {
			t.Errorf("RequestUnion case %s has no flags option", fd.Name())
		}
		nums = append(nums, Method(num))
		r := m.Interface().(*RequestUnion)
		meth := MethodOf(r)
		if meth != Method(num) {
			t.Errorf("RequestUnion case %d (%T) is method %v", num, r.Value, meth)
			continue
		}
		resp, ok := resps[num]
		if !ok {
			t.Errorf("RequestUnion case %d (%v) has no ResponseUnion case", num, meth)
			continue
		}
		respName := resp.WhichOneof(resp.Descriptor().Oneofs().ByName("value")).Name()
		if fd.Name() != respName {
			t.Errorf("case %d is %s in RequestUnion but %s in ResponseUnion", num, fd.Name(), respName)
		}
		if got := ResponseMethodOf(resp.Interface().(*ResponseUnion)); got != meth {
			t.Errorf("ResponseUnion case %d (%s) is method %v, its request %v", num, respName, got, meth)
		}
	}
	if len(resps) != len(reqs) {
		t.Errorf("%d response cases for %d request cases", len(resps), len(reqs))
	}
	slices.Sort(nums)
	if got := Methods(); !slices.Equal(got, nums) {
		t.Errorf("Methods() = %v, want the union's cases %v", got, nums)
	}
	if _, err := newMethodTable(File_kvpb_proto.Messages().ByName("RequestUnion").Oneofs().ByName("value"),
		File_kvpb_proto.Messages().ByName("ResponseUnion").Oneofs().ByName("value")); err != nil {
		t.Error(err)
	}
}

// TestEveryCaseAddressesKeys: every RequestUnion case's request has a key
// or a start, or the case is flagged keyless, so that no request routes
// by an empty key by mistake.
func TestEveryCaseAddressesKeys(t *testing.T) {
	for num, m := range unionCases(t, &RequestUnion{}) {
		fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("value"))
		fields := fd.Message().Fields()
		keyed := fields.ByName("key") != nil || fields.ByName("start") != nil
		if f := Method(num).Flags(); keyed == f.Has(IsKeyless) {
			t.Errorf("case %s (%v): key or start %v, keyless %v", fd.Name(), f, keyed, f.Has(IsKeyless))
		}
	}
}

// TestMethodConstants checks the Method constants against kvpb.proto.
func TestMethodConstants(t *testing.T) {
	cases := File_kvpb_proto.Messages().ByName("RequestUnion").Fields()
	for m, field := range map[Method]protoreflect.Name{
		Get: "get", Put: "put", Delete: "delete", Scan: "scan", CompareAndSwap: "cas",
		SystemPut: "system_put", SystemDelete: "system_delete", GC: "gc", SystemScan: "system_scan",
		ChangeReplicas: "change_replicas", TransferLeader: "transfer_leader", Progress: "progress",
	} {
		if fd := cases.ByName(field); fd == nil || Method(fd.Number()) != m {
			t.Errorf("constant %v (%d) is not RequestUnion case %s", m, int(m), field)
		}
	}
}

// TestFlagDependencies holds the rules between flags (CockroachDB's
// flagDependencies in kvpb/api.go), on the table and on checkFlags.
func TestFlagDependencies(t *testing.T) {
	names := map[string]bool{}
	for _, m := range Methods() {
		if err := checkFlags(m.Flags()); err != nil {
			t.Errorf("%v: %v", m, err)
		}
		if names[m.String()] {
			t.Errorf("method name %s repeated", m)
		}
		names[m.String()] = true
	}
	for _, f := range []Flags{0, IsRead | IsWrite, IsAdmin, IsAdmin | IsAlone, IsRead | IsRange | IsKeyless,
		IsWrite | IsSystem | IsAlone, IsAdmin | IsSystem | IsAlone | IsKeyless} {
		if checkFlags(f) == nil {
			t.Errorf("checkFlags(%v) accepts them", f)
		}
	}
	for _, m := range []Method{Unknown, -1, 6, 43, maxMethod + 1} {
		if m.Flags() != 0 || m.String() != fmt.Sprintf("Method(%d)", int(m)) {
			t.Errorf("%d, not a method, has flags %v and name %s", int(m), m.Flags(), m)
		}
	}
}

// TestFlagNames checks the Flags constants against kvpb.proto's
// MethodFlag: flag 1<<(n-1) is value n.
func TestFlagNames(t *testing.T) {
	want := map[Flags]MethodFlag{
		IsRead: MethodFlag_METHOD_FLAG_READ, IsWrite: MethodFlag_METHOD_FLAG_WRITE, IsAdmin: MethodFlag_METHOD_FLAG_ADMIN,
		IsRange: MethodFlag_METHOD_FLAG_RANGE, IsAlone: MethodFlag_METHOD_FLAG_ALONE, IsSystem: MethodFlag_METHOD_FLAG_SYSTEM,
		IsKeyless: MethodFlag_METHOD_FLAG_KEYLESS,
	}
	if n := MethodFlag(0).Descriptor().Values().Len() - 1; n != len(want) {
		t.Errorf("MethodFlag has %d flags, package kvpb %d", n, len(want))
	}
	for f, v := range want {
		if f != 1<<(v-1) || "METHOD_FLAG_"+strings.ToUpper(f.String()) != v.String() {
			t.Errorf("flag %v (%d) is not %v", f, f, v)
		}
	}
}

func TestMethodOf(t *testing.T) {
	for _, tc := range []struct {
		r    *RequestUnion
		want Method
	}{
		{nil, Unknown},
		{&RequestUnion{}, Unknown},
		{&RequestUnion{Value: &RequestUnion_Get{Get: &api.GetRequest{Key: []byte("k")}}}, Get},
		{&RequestUnion{Value: &RequestUnion_Cas{}}, CompareAndSwap},
		{&RequestUnion{Value: &RequestUnion_Progress{}}, Progress},
	} {
		if got := MethodOf(tc.r); got != tc.want {
			t.Errorf("MethodOf(%v) = %v, want %v", tc.r, got, tc.want)
		}
	}
	if s := Method(99).String(); s != "Method(99)" {
		t.Errorf("Method(99).String() = %q", s)
	}
	if s := (IsRead | IsRange).String(); s != "read|range" {
		t.Errorf("flags string %q", s)
	}
}

func TestBatchPredicates(t *testing.T) {
	get := &RequestUnion{Value: &RequestUnion_Get{Get: &api.GetRequest{Key: []byte("k")}}}
	put := &RequestUnion{Value: &RequestUnion_Put{Put: &api.PutRequest{Key: []byte("k")}}}
	admin := &RequestUnion{Value: &RequestUnion_TransferLeader{TransferLeader: &TransferLeaderRequest{NodeId: 2}}}
	unknown := &RequestUnion{}
	for _, tc := range []struct {
		name                     string
		reqs                     []*RequestUnion
		readOnly, write, isAdmin bool
	}{
		{"empty", nil, false, false, false},
		{"get", []*RequestUnion{get, get}, true, false, false},
		{"get put", []*RequestUnion{get, put}, false, true, false},
		{"admin", []*RequestUnion{admin}, false, false, true},
		{"get unknown", []*RequestUnion{get, unknown}, false, false, false},
	} {
		ba := &BatchRequest{Requests: tc.reqs}
		if got := ba.IsReadOnly(); got != tc.readOnly {
			t.Errorf("%s: IsReadOnly = %v", tc.name, got)
		}
		if got := ba.HasWrite(); got != tc.write {
			t.Errorf("%s: HasWrite = %v", tc.name, got)
		}
		if got := ba.IsAdmin(); got != tc.isAdmin {
			t.Errorf("%s: IsAdmin = %v", tc.name, got)
		}
	}
	var nilBatch *BatchRequest
	if nilBatch.IsReadOnly() || nilBatch.HasWrite() || nilBatch.IsAdmin() {
		t.Errorf("a nil batch has flags")
	}
}

func TestSpan(t *testing.T) {
	for _, tc := range []struct {
		r          *RequestUnion
		start, end string
		endNil     bool
	}{
		{getReq("a"), "a", "", true},
		{putReq("b", "v"), "b", "", true},
		{scanReq("c", []byte("d")), "c", "d", false},
		{scanReq("c", nil), "c", "", true},
		{sysPutReq("s"), "s", "", true},
		{&RequestUnion{Value: &RequestUnion_TsoLimit{TsoLimit: &TSOLimitRequest{Limit: 1}}}, "", "", true}, // keyless: it writes kvpb.TSOLimitKey
		{&RequestUnion{Value: &RequestUnion_Gc{Gc: &GCRequest{Threshold: 1}}}, "", "", true},
		{&RequestUnion{}, "", "", true},
		{nil, "", "", true},
		{&RequestUnion{Value: &RequestUnion_Put{}}, "", "", true},
		{&RequestUnion{Value: (*RequestUnion_Scan)(nil)}, "", "", true},
	} {
		start, end := Span(tc.r)
		if string(start) != tc.start || string(end) != tc.end || (end == nil) != tc.endNil {
			t.Errorf("Span(%v) = %q, %q", tc.r, start, end)
		}
	}
	// Every keyed method has a span: a request with a key set, of each case
	// found by reflection, returns a non-empty start unless it has no key.
	for num, m := range unionCases(t, &RequestUnion{}) {
		r := m.Interface().(*RequestUnion)
		inner := m.Get(m.WhichOneof(m.Descriptor().Oneofs().ByName("value"))).Message()
		for _, name := range []protoreflect.Name{"key", "start"} {
			if fd := inner.Descriptor().Fields().ByName(name); fd != nil {
				inner.Set(fd, protoreflect.ValueOfBytes([]byte("k")))
				if start, _ := Span(r); string(start) != "k" {
					t.Errorf("case %d (%v) has a %s but Span ignores it", num, MethodOf(r), name)
				}
			}
		}
	}
}

// TestMethodFor: a request message names its method.
func TestMethodFor(t *testing.T) {
	for _, tc := range []struct {
		req  proto.Message
		want Method
	}{
		{&api.PutRequest{}, Put},
		{&api.CompareAndSwapRequest{}, CompareAndSwap},
		{&SystemScanRequest{}, SystemScan},
		{&GetTimestampRequest{}, GetTimestamp},
		{&api.PutResponse{}, Unknown},
		{&ShardDescriptor{}, Unknown},
	} {
		if got := MethodFor(tc.req); got != tc.want {
			t.Errorf("MethodFor(%T) = %v, want %v", tc.req, got, tc.want)
		}
	}
}
