package kvpb

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// newOps are three request messages and their responses, as a proto file
// would declare them, for union cases no Go code knows: Frob (a key), Sweep
// (a span) and Poke (neither).
const newOps = `
message_type { name: "FrobRequest"
  field { name: "key" number: 1 type: TYPE_BYTES label: LABEL_OPTIONAL json_name: "key" }
  field { name: "value" number: 2 type: TYPE_BYTES label: LABEL_OPTIONAL json_name: "value" } }
message_type { name: "FrobResponse" }
message_type { name: "SweepRequest"
  field { name: "start" number: 1 type: TYPE_BYTES label: LABEL_OPTIONAL json_name: "start" }
  field { name: "end" number: 2 type: TYPE_BYTES label: LABEL_OPTIONAL json_name: "end"
          oneof_index: 0 proto3_optional: true }
  oneof_decl { name: "_end" } }
message_type { name: "SweepResponse" }
message_type { name: "PokeRequest"
  field { name: "node_id" number: 1 type: TYPE_UINT64 label: LABEL_OPTIONAL json_name: "nodeId" } }
message_type { name: "PokeResponse" }
`

// newCase describes a union case to add to kvpb.proto's unions.
type newCase struct {
	name  string
	num   int32
	msg   string // the request message; the response is msg's Response
	flags []MethodFlag
}

var (
	read, write, admin  = MethodFlag_METHOD_FLAG_READ, MethodFlag_METHOD_FLAG_WRITE, MethodFlag_METHOD_FLAG_ADMIN
	rng, alone, keyless = MethodFlag_METHOD_FLAG_RANGE, MethodFlag_METHOD_FLAG_ALONE, MethodFlag_METHOD_FLAG_KEYLESS
	newCases            = []newCase{
		{"frob", 120, "Frob", []MethodFlag{write}},
		{"sweep", 121, "Sweep", []MethodFlag{read, rng}},
		{"poke", 122, "Poke", []MethodFlag{admin, alone, keyless}},
	}
)

// withCases returns kvpb.proto's descriptor with newOps's messages and
// cases added to RequestUnion and ResponseUnion, after edit (if not nil)
// has changed them, and the table built from it.
func withCases(t *testing.T, cases []newCase, edit func(fdp *descriptorpb.FileDescriptorProto)) (protoreflect.FileDescriptor, *methodTable, error) {
	t.Helper()
	fdp := protodesc.ToFileDescriptorProto(File_kvpb_proto)
	fdp.Name = proto.String("kvpb_with_new_cases.proto")
	var ops descriptorpb.FileDescriptorProto
	if err := prototext.Unmarshal([]byte(newOps), &ops); err != nil {
		t.Fatal(err)
	}
	fdp.MessageType = append(fdp.MessageType, ops.MessageType...)
	union := func(name string) *descriptorpb.DescriptorProto {
		for _, m := range fdp.MessageType {
			if m.GetName() == name {
				return m
			}
		}
		t.Fatalf("no message %s", name)
		return nil
	}
	for _, c := range cases {
		opts := &descriptorpb.FieldOptions{}
		proto.SetExtension(opts, E_Flags, c.flags)
		for _, u := range []struct{ union, msg string }{{"RequestUnion", c.msg + "Request"}, {"ResponseUnion", c.msg + "Response"}} {
			f := &descriptorpb.FieldDescriptorProto{
				Name: proto.String(c.name), Number: proto.Int32(c.num), JsonName: proto.String(c.name),
				Label:      descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
				Type:       descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(),
				TypeName:   proto.String(".strata.kv.v1." + u.msg),
				OneofIndex: proto.Int32(0),
			}
			if u.union == "RequestUnion" {
				f.Options = opts
			}
			m := union(u.union)
			m.Field = append(m.Field, f)
		}
	}
	if edit != nil {
		edit(fdp)
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := newMethodTable(fd.Messages().ByName("RequestUnion").Oneofs().ByName("value"),
		fd.Messages().ByName("ResponseUnion").Oneofs().ByName("value"))
	return fd, tab, err
}

// TestProtoOnlyMethod proves issue 11's measure for package kvpb: union
// cases declared in kvpb.proto only, with no Go code, are methods with
// their names and flags, and are routed (Span) and validated by their key
// fields like the cases compiled in.
func TestProtoOnlyMethod(t *testing.T) {
	fd, tab, err := withCases(t, newCases, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range Methods() {
		if got := tab.info(m); got.name != m.String() || got.flags != m.Flags() {
			t.Errorf("%v changed: %s %v", m, got.name, got.flags)
		}
	}
	for _, tc := range []struct {
		m     Method
		name  string
		flags Flags
	}{{120, "Frob", IsWrite}, {121, "Sweep", IsRead | IsRange}, {122, "Poke", IsAdmin | IsAlone | IsKeyless}} {
		if got := tab.info(tc.m); got.name != tc.name || got.flags != tc.flags {
			t.Errorf("method %d: %s %v, want %s %v", tc.m, got.name, got.flags, tc.name, tc.flags)
		}
	}
	if n := len(tab.list); n != len(Methods())+3 {
		t.Errorf("%d methods", n)
	}

	// request sets case name of a new RequestUnion to a request whose bytes
	// fields are fields.
	union := fd.Messages().ByName("RequestUnion")
	request := func(name protoreflect.Name, fields map[protoreflect.Name][]byte) protoreflect.Message {
		u := dynamicpb.NewMessage(union)
		c := union.Fields().ByName(name)
		r := u.Mutable(c).Message()
		for f, v := range fields {
			r.Set(r.Descriptor().Fields().ByName(f), protoreflect.ValueOfBytes(v))
		}
		return u
	}
	for _, tc := range []struct {
		name       protoreflect.Name
		fields     map[protoreflect.Name][]byte
		start, end string
		endNil     bool
		err        error  // from checkKeys
		text       string // in its text
	}{
		{"frob", map[protoreflect.Name][]byte{"key": []byte("k"), "value": []byte("v")}, "k", "", true, nil, ""},
		{"frob", map[protoreflect.Name][]byte{"value": []byte("v")}, "", "", true, errEmptyKey, ""},
		{"sweep", map[protoreflect.Name][]byte{"start": []byte("a"), "end": []byte("b")}, "a", "b", false, nil, ""},
		{"sweep", map[protoreflect.Name][]byte{"start": []byte("a")}, "a", "", true, nil, ""},
		{"sweep", map[protoreflect.Name][]byte{"start": []byte("b"), "end": []byte("a")}, "b", "a", false, nil, "not after start"},
		{"sweep", map[protoreflect.Name][]byte{"start": []byte("b"), "end": {}}, "b", "", false, nil, "not after start"},
		{"poke", nil, "", "", true, nil, ""},
	} {
		u := request(tc.name, tc.fields)
		m := tab.methodOf(u)
		if m != Method(union.Fields().ByName(tc.name).Number()) {
			t.Fatalf("%s is method %v", tc.name, m)
		}
		r := tab.requestOf(m, u)
		start, end := tab.span(m, r)
		if string(start) != tc.start || string(end) != tc.end || (end == nil) != tc.endNil {
			t.Errorf("%s %q: span %q, %q", tc.name, tc.fields, start, end)
		}
		err := tab.checkKeys(m, r)
		switch {
		case tc.err == nil && tc.text == "" && err != nil:
			t.Errorf("%s %q: %v", tc.name, tc.fields, err)
		case tc.err != nil && !errors.Is(err, tc.err):
			t.Errorf("%s %q: got %v, want %v", tc.name, tc.fields, err, tc.err)
		case tc.text != "" && (err == nil || !strings.Contains(err.Error(), tc.text)):
			t.Errorf("%s %q: error %v does not say %q", tc.name, tc.fields, err, tc.text)
		}
	}
	if m := tab.methodOf(dynamicpb.NewMessage(union)); m != Unknown {
		t.Errorf("an empty union is method %v", m)
	}
}

// TestMethodTableRefuses: a case declared wrongly in the proto is left out
// of the table and named in the error, which at init stops the process.
func TestMethodTableRefuses(t *testing.T) {
	with := func(c newCase) []newCase { return append(append([]newCase(nil), newCases[:2]...), c) }
	field := func(fdp *descriptorpb.FileDescriptorProto, msg, name string) *descriptorpb.FieldDescriptorProto {
		for _, m := range fdp.MessageType {
			for _, f := range m.Field {
				if m.GetName() == msg && f.GetName() == name {
					return f
				}
			}
		}
		t.Fatalf("no field %s.%s", msg, name)
		return nil
	}
	for _, tc := range []struct {
		name  string
		cases []newCase
		edit  func(*descriptorpb.FileDescriptorProto)
		text  string
	}{
		{"no flags", with(newCase{"poke", 122, "Poke", nil}), nil, "poke: no flags option"},
		{"read and write", with(newCase{"poke", 122, "Poke", []MethodFlag{read, write, keyless}}), nil, "exactly one of"},
		{"unknown flag", with(newCase{"poke", 122, "Poke", []MethodFlag{admin, 42}}), nil, "flag 42 unknown"},
		{"admin not alone", with(newCase{"poke", 122, "Poke", []MethodFlag{admin, keyless}}), nil, "admin must be alone"},
		{"no key, not keyless", with(newCase{"poke", 122, "Poke", []MethodFlag{write}}), nil, "has key false, start false"},
		{"a key, keyless", with(newCase{"poke", 122, "Frob", []MethodFlag{write, keyless}}), nil, "has key true"},
		{"a span, not range", with(newCase{"poke", 122, "Sweep", []MethodFlag{read}}), nil, "has start true"},
		{"range with a key", with(newCase{"poke", 122, "Frob", []MethodFlag{read, rng}}), nil, "has start false"},
		{"key not bytes", newCases, func(fdp *descriptorpb.FileDescriptorProto) {
			field(fdp, "FrobRequest", "key").Type = descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
		}, "FrobRequest.key is not bytes"},
		{"end not optional", newCases, func(fdp *descriptorpb.FileDescriptorProto) {
			f := field(fdp, "SweepRequest", "end")
			f.OneofIndex, f.Proto3Optional = nil, nil
			for _, m := range fdp.MessageType {
				if m.GetName() == "SweepRequest" {
					m.OneofDecl = nil
				}
			}
		}, "SweepRequest.end is not optional"},
		{"response renamed", newCases, func(fdp *descriptorpb.FileDescriptorProto) {
			field(fdp, "ResponseUnion", "frob").Name = proto.String("frobbed")
		}, "response case 120 is named frobbed"},
		{"no response", newCases, func(fdp *descriptorpb.FileDescriptorProto) {
			field(fdp, "ResponseUnion", "frob").Number = proto.Int32(130)
		}, "ResponseUnion.frob: no request case 130"},
		{"name repeated", with(newCase{"poke", 122, "Frob", []MethodFlag{write}}), nil, "method name Frob is also case frob's"},
	} {
		_, tab, err := withCases(t, tc.cases, tc.edit)
		if err == nil || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: error %v does not say %q", tc.name, err, tc.text)
			continue
		}
		if n := len(tab.list); n != len(Methods())+len(tc.cases)-1 {
			t.Errorf("%s: %d methods in the table, want all but the wrong one", tc.name, n)
		}
	}
}
