package kvpb

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Method names a request kind: one RequestUnion case. Its value is the
// case's field number in kvpb.proto, so a method means the same in every
// process and on the wire.
//
// Everything about a method is declared in kvpb.proto and read from its
// descriptors when the package initialises: its name is its request
// message's, less "Request"; its flags are the case's flags option; the
// keys it addresses are its request's fields key, or start and end. A new
// case needs no Go code here.
type Method int

// The methods Go code names. A constant is only a name for a field number
// (TestMethodConstants checks each against kvpb.proto): a new RequestUnion
// case needs one only when code refers to it, as a command registering
// itself does.
const (
	Unknown        Method = 0 // no case set, or one this binary does not know
	Get            Method = 1
	Put            Method = 2
	Delete         Method = 3
	Scan           Method = 4
	CompareAndSwap Method = 5
	SystemPut      Method = 20
	SystemDelete   Method = 21
	GC             Method = 22
	SystemScan     Method = 23
	TSOLimit       Method = 24
	ChangeReplicas Method = 40
	TransferLeader Method = 41
	Progress       Method = 42
	GetTimestamp   Method = 60
)

// TSOLimitKey is the system key holding the timestamp oracle's persisted
// limit (a big-endian uint64), written by TSOLimitRequest.
var TSOLimitKey = []byte("tso/limit")

// MaxTimestampCount is the most timestamps one GetTimestampRequest may ask
// for (tso.MaxBatch).
const MaxTimestampCount = 1 << 16

// Flags describe what a method does; routing, validation and evaluation ask
// them instead of listing methods.
type Flags uint32

// The flags: flag 1<<(n-1) is value n of kvpb.proto's MethodFlag, which
// documents them. Every method has exactly one of IsRead, IsWrite and
// IsAdmin; checkFlags holds the rules between them.
const (
	// IsRead: reads replicated state and changes nothing.
	IsRead Flags = 1 << iota
	// IsWrite: changes replicated state through a replicated command.
	IsWrite
	// IsAdmin: acts on the shard's raft group (membership, leadership)
	// rather than its data; runs on the leader; implies IsAlone and
	// IsKeyless.
	IsAdmin
	// IsRange: addresses a span [start, end) rather than one key.
	IsRange
	// IsAlone: must be the only request of its batch.
	IsAlone
	// IsSystem: addresses system keys, which live on the system shard only;
	// never in a batch with requests that are not.
	IsSystem
	// IsKeyless: addresses no key but the shard the batch's header names
	// (GC, admin); its Span is nil.
	IsKeyless
)

// flagNames are the flags' names, from MethodFlag ("read" for
// METHOD_FLAG_READ), indexed by bit.
var flagNames []string

// Has reports whether f includes every flag of g.
func (f Flags) Has(g Flags) bool { return f&g == g }

func (f Flags) String() string {
	var names []string
	for i, name := range flagNames {
		if f&(1<<i) != 0 {
			names = append(names, name)
		}
	}
	return strings.Join(names, "|")
}

// checkFlags holds the rules between a method's flags (CockroachDB's
// flagDependencies in kvpb/api.go).
func checkFlags(f Flags) error {
	kinds := 0
	for _, k := range []Flags{IsRead, IsWrite, IsAdmin} {
		if f.Has(k) {
			kinds++
		}
	}
	switch {
	case kinds != 1:
		return fmt.Errorf("flags %v: want exactly one of read, write, admin", f)
	case f.Has(IsAdmin) && !f.Has(IsAlone|IsKeyless):
		return fmt.Errorf("flags %v: admin must be alone and keyless", f)
	case f.Has(IsRange) && f.Has(IsKeyless):
		return fmt.Errorf("flags %v: range and keyless", f)
	case f.Has(IsSystem) && f&(IsAdmin|IsAlone) != 0:
		// A keyless system write names its own fixed key (TSOLimit).
		return fmt.Errorf("flags %v: system requests are not admin or alone", f)
	}
	return nil
}

// maxMethod bounds the union's field numbers, which index the method table.
const maxMethod = 1 << 12

// methodInfo is one method, as kvpb.proto declares it.
type methodInfo struct {
	name     string
	flags    Flags
	request  protoreflect.FieldDescriptor // the request union's case; nil: no method
	response protoreflect.FieldDescriptor // the response union's case
	// key, or start and end, are the request message's fields that address
	// its key or span; nil when it has none (end: then a span is unbounded).
	key, start, end protoreflect.FieldDescriptor
}

// methodTable is the methods of a request union and its response union,
// built from their descriptors.
type methodTable struct {
	oneof protoreflect.OneofDescriptor // the request union's oneof
	rows  []methodInfo                 // indexed by Method
	list  []Method                     // the methods, in number order
}

// newMethodTable builds the table of the cases of req, a request union's
// oneof, answered by the cases of resp. Every case of req must carry the
// flags option (obeying checkFlags) and have a case of resp with the same
// number and name; its request message must address its key or span as
// its flags say. The error lists every case that does not; the table
// leaves them out.
func newMethodTable(req, resp protoreflect.OneofDescriptor) (*methodTable, error) {
	t := &methodTable{oneof: req}
	var errs []error
	names := map[string]protoreflect.Name{}
	for i := 0; i < req.Fields().Len(); i++ {
		fd := req.Fields().Get(i)
		info, err := newMethodInfo(fd, resp)
		if err == nil && names[info.name] != "" {
			err = fmt.Errorf("method name %s is also case %s's", info.name, names[info.name])
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", fd.FullName(), err))
			continue
		}
		names[info.name] = fd.Name()
		m := Method(fd.Number())
		if int(m) >= len(t.rows) {
			t.rows = append(t.rows, make([]methodInfo, int(m)+1-len(t.rows))...)
		}
		t.rows[m] = info
		t.list = append(t.list, m)
	}
	for i := 0; i < resp.Fields().Len(); i++ {
		if fd := resp.Fields().Get(i); req.Fields().ByNumber(fd.Number()) == nil {
			errs = append(errs, fmt.Errorf("%s: no request case %d", fd.FullName(), fd.Number()))
		}
	}
	slices.Sort(t.list)
	return t, errors.Join(errs...)
}

// newMethodInfo reads one request case's declaration.
func newMethodInfo(fd protoreflect.FieldDescriptor, resp protoreflect.OneofDescriptor) (methodInfo, error) {
	if fd.Number() > maxMethod {
		return methodInfo{}, fmt.Errorf("field number %d above %d", fd.Number(), maxMethod)
	}
	msg := fd.Message()
	if msg == nil {
		return methodInfo{}, errors.New("not a message")
	}
	info := methodInfo{request: fd, name: strings.TrimSuffix(string(msg.Name()), "Request")}
	if info.name == "" {
		info.name = string(msg.Name())
	}
	declared, _ := proto.GetExtension(fd.Options(), E_Flags).([]MethodFlag)
	if len(declared) == 0 {
		return methodInfo{}, errors.New("no flags option")
	}
	for _, f := range declared {
		if f <= 0 || int(f) > len(flagNames) {
			return methodInfo{}, fmt.Errorf("flag %v unknown", f)
		}
		info.flags |= 1 << (f - 1)
	}
	if err := checkFlags(info.flags); err != nil {
		return methodInfo{}, err
	}
	var err error
	if info.key, err = bytesField(msg, "key", false); err != nil {
		return methodInfo{}, err
	}
	if info.start, err = bytesField(msg, "start", false); err != nil {
		return methodInfo{}, err
	}
	if info.end, err = bytesField(msg, "end", true); err != nil {
		return methodInfo{}, err
	}
	switch keyed := info.key != nil || info.start != nil; {
	case info.key != nil && info.start != nil:
		return methodInfo{}, fmt.Errorf("%s has both a key and a start", msg.Name())
	case info.end != nil && info.start == nil:
		return methodInfo{}, fmt.Errorf("%s has an end but no start", msg.Name())
	case keyed == info.flags.Has(IsKeyless):
		return methodInfo{}, fmt.Errorf("flags %v, but %s has key %v, start %v", info.flags, msg.Name(), info.key != nil, info.start != nil)
	case (info.start != nil) != info.flags.Has(IsRange):
		return methodInfo{}, fmt.Errorf("flags %v, but %s has start %v", info.flags, msg.Name(), info.start != nil)
	}
	info.response = resp.Fields().ByNumber(fd.Number())
	switch {
	case info.response == nil:
		return methodInfo{}, errors.New("no response case of its number")
	case info.response.Name() != fd.Name():
		return methodInfo{}, fmt.Errorf("response case %d is named %s", fd.Number(), info.response.Name())
	case info.response.Message() == nil:
		return methodInfo{}, errors.New("response case is not a message")
	}
	return info, nil
}

// bytesField returns msg's field name if it has one, which must be a
// singular bytes field, with presence if withPresence (an unset end is
// unbounded, a set empty one is not).
func bytesField(msg protoreflect.MessageDescriptor, name protoreflect.Name, withPresence bool) (protoreflect.FieldDescriptor, error) {
	fd := msg.Fields().ByName(name)
	switch {
	case fd == nil:
		return nil, nil
	case fd.Kind() != protoreflect.BytesKind || fd.IsList():
		return nil, fmt.Errorf("%s.%s is not bytes", msg.Name(), name)
	case withPresence && !fd.HasPresence():
		return nil, fmt.Errorf("%s.%s is not optional", msg.Name(), name)
	}
	return fd, nil
}

// noMethod is the row of methods that are not in a table.
var noMethod methodInfo

func (t *methodTable) info(m Method) *methodInfo {
	if m <= Unknown || int(m) >= len(t.rows) || t.rows[m].request == nil {
		return &noMethod
	}
	return &t.rows[m]
}

// methodOf returns the method of u's case, where u is a message of the
// table's request union; Unknown if none is set or it is not in the table.
func (t *methodTable) methodOf(u protoreflect.Message) Method {
	fd := u.WhichOneof(t.oneof)
	if fd == nil {
		return Unknown
	}
	m := Method(fd.Number())
	if t.info(m).request == nil {
		return Unknown
	}
	return m
}

// requestOf returns the request message of u's case, where m is its
// method: the generic and slower way of caseRequest.
func (t *methodTable) requestOf(m Method, u protoreflect.Message) protoreflect.Message {
	return u.Get(t.info(m).request).Message()
}

// span returns the keys addressed by r, the request message of method m
// (see Span).
func (t *methodTable) span(m Method, r protoreflect.Message) (start, end []byte) {
	info := t.info(m)
	if info.key != nil {
		return r.Get(info.key).Bytes(), nil
	}
	if info.start == nil {
		return nil, nil
	}
	start = r.Get(info.start).Bytes()
	if info.end != nil && r.Has(info.end) {
		if end = r.Get(info.end).Bytes(); end == nil {
			end = []byte{}
		}
	}
	return start, end
}

// checkKeys checks the keys addressed by r, the request message of method
// m: a key is not empty, a set end is after its start.
func (t *methodTable) checkKeys(m Method, r protoreflect.Message) error {
	switch info := t.info(m); {
	case info.key != nil:
		return key(r.Get(info.key).Bytes())
	case info.start != nil:
		return span(t.span(m, r))
	}
	return nil
}

// caseRequest returns the request message of r's case, whose method is m.
// It reads the case's wrapper struct (RequestUnion_Put{Put: ...}), whose
// one field protoc-gen-go makes the message, rather than asking
// protoreflect for the oneof field, which costs three times as much (init
// checks that both agree for every case). A nil wrapper, which protobuf
// never makes, takes protoreflect's way, which reads it as empty.
func caseRequest(m Method, r *RequestUnion) protoreflect.Message {
	v := reflect.ValueOf(r.Value)
	if v.IsNil() {
		return methods.requestOf(m, r.ProtoReflect())
	}
	return v.Elem().Field(0).Interface().(protoreflect.ProtoMessage).ProtoReflect()
}

// methods is kvpb.proto's method table; byRequest and byResponse map a
// union case's Go type to its method. All three are read-only after init.
var (
	methods               *methodTable
	byRequest, byResponse map[reflect.Type]Method
)

func init() {
	file_kvpb_proto_init() // kvpb.pb.go's init, if it has not run yet
	flags := MethodFlag(0).Descriptor().Values()
	for n := 1; n < flags.Len(); n++ {
		name := strings.TrimPrefix(string(flags.ByNumber(protoreflect.EnumNumber(n)).Name()), "METHOD_FLAG_")
		flagNames = append(flagNames, strings.ToLower(name))
	}
	req := (&RequestUnion{}).ProtoReflect()
	resp := (&ResponseUnion{}).ProtoReflect()
	t, err := newMethodTable(req.Descriptor().Oneofs().ByName("value"), resp.Descriptor().Oneofs().ByName("value"))
	if err != nil {
		// kvpb.proto is compiled in: a mistake in it shows in every test.
		panic(fmt.Sprintf("kvpb: kvpb.proto declares methods wrongly: %v", err))
	}
	methods = t
	byRequest, byResponse = map[reflect.Type]Method{}, map[reflect.Type]Method{}
	for _, m := range t.list {
		info := t.info(m)
		r, a := req.New(), resp.New()
		r.Set(info.request, r.NewField(info.request))
		a.Set(info.response, a.NewField(info.response))
		u := r.Interface().(*RequestUnion)
		byRequest[reflect.TypeOf(u.Value)] = m
		byResponse[reflect.TypeOf(a.Interface().(*ResponseUnion).Value)] = m
		if caseRequest(m, u).Interface() != t.requestOf(m, r).Interface() {
			panic(fmt.Sprintf("kvpb: case %s's wrapper does not hold its request", info.request.Name()))
		}
	}
}

// Methods returns every method, in number order.
func Methods() []Method { return slices.Clone(methods.list) }

// MethodFor returns the method whose request is a message of req's type
// (e.g. &api.PutRequest{} is Put): a command names its method by its
// request type, and a new one needs no constant here. Unknown if none.
func MethodFor(req proto.Message) Method {
	name := req.ProtoReflect().Descriptor().FullName()
	for _, m := range methods.list {
		if methods.info(m).request.Message().FullName() == name {
			return m
		}
	}
	return Unknown
}

func (m Method) String() string {
	if info := methods.info(m); info.request != nil {
		return info.name
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// Flags returns m's flags; 0 for Unknown and numbers that are no method.
func (m Method) Flags() Flags { return methods.info(m).flags }

// MethodOf returns the method of r's case: Unknown when r is nil, has no
// case set, or has one this binary does not know (an unknown field).
func MethodOf(r *RequestUnion) Method {
	if r == nil || r.Value == nil {
		return Unknown
	}
	return byRequest[reflect.TypeOf(r.Value)]
}

// ResponseMethodOf returns the method whose response is r's case; Unknown
// as for MethodOf.
func ResponseMethodOf(r *ResponseUnion) Method {
	if r == nil || r.Value == nil {
		return Unknown
	}
	return byResponse[reflect.TypeOf(r.Value)]
}

// Flags returns the union of the flags of ba's requests.
func (ba *BatchRequest) Flags() Flags {
	var f Flags
	for _, r := range ba.GetRequests() {
		f |= MethodOf(r).Flags()
	}
	return f
}

// IsReadOnly reports whether ba has requests and all of them are reads of
// known methods.
func (ba *BatchRequest) IsReadOnly() bool {
	if len(ba.GetRequests()) == 0 {
		return false
	}
	for _, r := range ba.GetRequests() {
		if f := MethodOf(r).Flags(); !f.Has(IsRead) {
			return false
		}
	}
	return true
}

// HasWrite reports whether a request of ba is a write.
func (ba *BatchRequest) HasWrite() bool { return ba.Flags().Has(IsWrite) }

// IsAdmin reports whether a request of ba is an admin request (in a valid
// batch, then its only one).
func (ba *BatchRequest) IsAdmin() bool { return ba.Flags().Has(IsAdmin) }

// Span returns the keys r addresses, for routing and range checks: for a
// method flagged IsRange, its request's span [start, end) (a nil end is
// unbounded); for another request with a key, that key and a nil end; for
// a keyless request (GC, admin) or an unknown one, nil and nil. System
// requests return system keys.
func Span(r *RequestUnion) (start, end []byte) {
	m := MethodOf(r)
	if m == Unknown {
		return nil, nil
	}
	return methods.span(m, caseRequest(m, r))
}
