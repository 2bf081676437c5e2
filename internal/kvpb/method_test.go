package kvpb

import (
	"testing"

	"github.com/strata-kv/strata/api"
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

// TestEveryUnionCaseHasAMethod fails when a RequestUnion or ResponseUnion
// case has no row in the method table, or a request case no response case
// of the same name and number.
func TestEveryUnionCaseHasAMethod(t *testing.T) {
	reqs := unionCases(t, &RequestUnion{})
	resps := unionCases(t, &ResponseUnion{})
	seen := map[Method]bool{}
	for num, m := range reqs {
		r := m.Interface().(*RequestUnion)
		meth := MethodOf(r)
		if meth == Unknown {
			t.Errorf("RequestUnion case %d (%T) has no row in the method table", num, r.Value)
			continue
		}
		if seen[meth] {
			t.Errorf("method %v has two request cases", meth)
		}
		seen[meth] = true
		resp, ok := resps[num]
		if !ok {
			t.Errorf("RequestUnion case %d (%v) has no ResponseUnion case", num, meth)
			continue
		}
		reqName := m.WhichOneof(m.Descriptor().Oneofs().ByName("value")).Name()
		respName := resp.WhichOneof(resp.Descriptor().Oneofs().ByName("value")).Name()
		if reqName != respName {
			t.Errorf("case %d is %s in RequestUnion but %s in ResponseUnion", num, reqName, respName)
		}
		if got := ResponseMethodOf(resp.Interface().(*ResponseUnion)); got != meth {
			t.Errorf("ResponseUnion case %d (%s) is method %v, its request %v", num, respName, got, meth)
		}
	}
	if len(resps) != len(reqs) {
		t.Errorf("%d response cases for %d request cases", len(resps), len(reqs))
	}
	for m := Unknown + 1; m < numMethods; m++ {
		if !seen[m] {
			t.Errorf("method %v has no RequestUnion case", m)
		}
	}
}

// TestFlagDependencies holds the rules between flags (CockroachDB's
// flagDependencies in kvpb/api.go).
func TestFlagDependencies(t *testing.T) {
	names := map[string]bool{}
	for m := Unknown + 1; m < numMethods; m++ {
		f := m.Flags()
		kinds := 0
		for _, k := range []Flags{IsRead, IsWrite, IsAdmin} {
			if f.Has(k) {
				kinds++
			}
		}
		if kinds != 1 {
			t.Errorf("%v (%v): want exactly one of read, write, admin", m, f)
		}
		if f.Has(IsAdmin) && !f.Has(IsAlone) {
			t.Errorf("%v (%v): admin must be alone", m, f)
		}
		if f.Has(IsRange) && f.Has(IsAdmin) {
			t.Errorf("%v (%v): admin requests address no span", m, f)
		}
		if f.Has(IsSystem) && (f.Has(IsAdmin) || f.Has(IsAlone)) {
			t.Errorf("%v (%v): system requests are key requests, not admin or alone", m, f)
		}
		if names[m.String()] {
			t.Errorf("method name %s repeated", m)
		}
		names[m.String()] = true
	}
	if Unknown.Flags() != 0 || Method(numMethods).Flags() != 0 || Method(-1).Flags() != 0 {
		t.Errorf("unknown methods have flags")
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
		{&RequestUnion{Value: &RequestUnion_TsoLimit{TsoLimit: &TSOLimitRequest{Limit: 1}}}, "tso/limit", "", true},
		{&RequestUnion{Value: &RequestUnion_Gc{Gc: &GCRequest{Threshold: 1}}}, "", "", true},
		{&RequestUnion{}, "", "", true},
		{nil, "", "", true},
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
