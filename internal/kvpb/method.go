package kvpb

import (
	"fmt"
	"reflect"
	"strings"
)

// Method names a request kind: one RequestUnion case.
type Method int

// The methods, one per RequestUnion case. The values are for this process
// only (a table index); on the wire a method is its union field number.
const (
	Unknown Method = iota // no case set, or one this binary does not know
	Get
	Put
	Delete
	Scan
	CompareAndSwap
	SystemPut
	SystemDelete
	SystemScan
	GC
	ChangeReplicas
	TransferLeader
	Progress
	TSOLimit
	GetTimestamp
	numMethods
)

// Flags describe what a method does; routing, validation and evaluation ask
// them instead of listing methods.
type Flags uint32

// The flags. Every method has exactly one of IsRead, IsWrite and IsAdmin
// (TestFlagDependencies holds the rules).
const (
	// IsRead: reads replicated state and changes nothing.
	IsRead Flags = 1 << iota
	// IsWrite: changes replicated state through a replicated command.
	IsWrite
	// IsAdmin: acts on the shard's raft group (membership, leadership)
	// rather than its data; runs on the leader; implies IsAlone.
	IsAdmin
	// IsRange: addresses a span [start, end) rather than one key.
	IsRange
	// IsAlone: must be the only request of its batch.
	IsAlone
	// IsSystem: addresses system keys, which live on the system shard only;
	// never in a batch with requests that are not.
	IsSystem
)

var flagNames = []string{"read", "write", "admin", "range", "alone", "system"}

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

// methodInfo is one row of the method table.
type methodInfo struct {
	method   Method
	name     string
	request  isRequestUnion_Value  // the request case, a typed nil
	response isResponseUnion_Value // the response case, a typed nil
	flags    Flags
}

// methods is the one table of methods, indexed by Method: each union case,
// its name and flags. A new RequestUnion case needs a row here (a test
// finds cases without one).
var methods = [numMethods]methodInfo{
	{Unknown, "Unknown", nil, nil, 0},
	{Get, "Get", (*RequestUnion_Get)(nil), (*ResponseUnion_Get)(nil), IsRead},
	{Put, "Put", (*RequestUnion_Put)(nil), (*ResponseUnion_Put)(nil), IsWrite},
	{Delete, "Delete", (*RequestUnion_Delete)(nil), (*ResponseUnion_Delete)(nil), IsWrite},
	{Scan, "Scan", (*RequestUnion_Scan)(nil), (*ResponseUnion_Scan)(nil), IsRead | IsRange},
	{CompareAndSwap, "CompareAndSwap", (*RequestUnion_Cas)(nil), (*ResponseUnion_Cas)(nil), IsWrite},
	{SystemPut, "SystemPut", (*RequestUnion_SystemPut)(nil), (*ResponseUnion_SystemPut)(nil), IsWrite | IsSystem},
	{SystemDelete, "SystemDelete", (*RequestUnion_SystemDelete)(nil), (*ResponseUnion_SystemDelete)(nil), IsWrite | IsSystem},
	{SystemScan, "SystemScan", (*RequestUnion_SystemScan)(nil), (*ResponseUnion_SystemScan)(nil), IsRead | IsRange | IsSystem},
	{GC, "GC", (*RequestUnion_Gc)(nil), (*ResponseUnion_Gc)(nil), IsWrite | IsAlone},
	{ChangeReplicas, "ChangeReplicas", (*RequestUnion_ChangeReplicas)(nil), (*ResponseUnion_ChangeReplicas)(nil), IsAdmin | IsAlone},
	{TransferLeader, "TransferLeader", (*RequestUnion_TransferLeader)(nil), (*ResponseUnion_TransferLeader)(nil), IsAdmin | IsAlone},
	{Progress, "Progress", (*RequestUnion_Progress)(nil), (*ResponseUnion_Progress)(nil), IsAdmin | IsAlone},
	{TSOLimit, "TSOLimit", (*RequestUnion_TsoLimit)(nil), (*ResponseUnion_TsoLimit)(nil), IsWrite | IsSystem},
	{GetTimestamp, "GetTimestamp", (*RequestUnion_GetTimestamp)(nil), (*ResponseUnion_GetTimestamp)(nil), IsAdmin | IsAlone},
}

// TSOLimitKey is the system key holding the timestamp oracle's persisted
// limit (a big-endian uint64), written by TSOLimitRequest.
var TSOLimitKey = []byte("tso/limit")

// MaxTimestampCount is the most timestamps one GetTimestampRequest may ask
// for (tso.MaxBatch).
const MaxTimestampCount = 1 << 16

// byRequest and byResponse map a union case's Go type to its method.
var byRequest, byResponse = func() (map[reflect.Type]Method, map[reflect.Type]Method) {
	req, resp := map[reflect.Type]Method{}, map[reflect.Type]Method{}
	for i, m := range methods {
		if m.method != Method(i) {
			panic(fmt.Sprintf("kvpb: method table row %d is %s", i, m.name))
		}
		if i != int(Unknown) {
			req[reflect.TypeOf(m.request)] = m.method
			resp[reflect.TypeOf(m.response)] = m.method
		}
	}
	return req, resp
}()

func (m Method) info() *methodInfo {
	if m <= Unknown || m >= numMethods {
		return &methods[Unknown]
	}
	return &methods[m]
}

func (m Method) String() string {
	if m <= Unknown || m >= numMethods {
		return fmt.Sprintf("Method(%d)", int(m))
	}
	return m.info().name
}

// Flags returns m's flags; 0 for Unknown.
func (m Method) Flags() Flags { return m.info().flags }

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
// method flagged IsRange, the span [start, end) (a nil end is unbounded);
// for another request with a key, that key and a nil end; for a request
// with no key (GC, admin), nil and nil. System requests return system keys.
func Span(r *RequestUnion) (start, end []byte) {
	switch v := r.GetValue().(type) {
	case *RequestUnion_Get:
		return v.Get.GetKey(), nil
	case *RequestUnion_Put:
		return v.Put.GetKey(), nil
	case *RequestUnion_Delete:
		return v.Delete.GetKey(), nil
	case *RequestUnion_Scan:
		return v.Scan.GetStart(), v.Scan.GetEnd()
	case *RequestUnion_Cas:
		return v.Cas.GetKey(), nil
	case *RequestUnion_SystemPut:
		return v.SystemPut.GetKey(), nil
	case *RequestUnion_SystemDelete:
		return v.SystemDelete.GetKey(), nil
	case *RequestUnion_SystemScan:
		return v.SystemScan.GetStart(), v.SystemScan.GetEnd()
	case *RequestUnion_TsoLimit:
		return TSOLimitKey, nil
	}
	return nil, nil
}
