// Package kvpb is Strata's internal request model (protobuf package
// strata.kv.v1, kvpb.proto): the BatchRequest a node's router sends to a
// shard's replica, with a Header (shard, generation, timestamp, read level,
// budgets) and typed RequestUnion and ResponseUnion cases; the NodeRequest a
// node answers about itself; the typed Error both return; the ShardDescriptor
// and NodeRecord stored on the system shard; and the ReplicatedCommand
// stored in raft logs.
//
// The Go files beside the generated code hold what every user of the model
// would otherwise repeat:
//
//   - method.go: the method table, built at start-up from kvpb.proto's
//     descriptors: each RequestUnion case is a Method (its field number),
//     named after its request message, with the Flags its flags option
//     declares (read, write, admin, range, alone, system, keyless), and
//     the key or span its request's fields key, start and end address
//     (Span). Adding a case to kvpb.proto is all kvpb needs for a new
//     operation. Batch predicates (ba.IsReadOnly, ba.IsAdmin, ba.HasWrite)
//     let callers ask flags instead of keeping lists of cases;
//   - validate.go: Validate, the well-formedness rules every receiver of a
//     batch applies (keys set and ranges ordered, as the method table
//     finds them; admin alone; size caps; the few methods whose other
//     arguments have rules), and ValidateResponse and ValidateNodeRequest;
//   - errors.go: Go errors for each Error detail and the two conversions,
//     ErrorOf and (*Error).Err, in one place;
//   - command.go: the raft payload's format tag, EncodeCommand,
//     DecodeCommand and IsLegacyCommand.
//
// Regenerate kvpb.pb.go with `make proto` (or `go generate` here).
//
// What kvpb must not do: it is a leaf. It imports protobuf and package api
// only, never another Strata package; it does no I/O, keeps no state and
// knows nothing of routing, raft, MVCC or storage. Deciding what a request
// means is the statemachine's job, where it goes the router's, and whether
// it may run the replica's; kvpb only says what a well-formed request is.
//
// Compatibility: the messages cross nodes of mixed versions and the
// replicated command stays in raft logs, so kvpb.proto changes are additive
// only (see its package comment).
package kvpb
