package raftnode

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-kv/strata/storage"
	"github.com/strata-kv/strata/transport"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// A snapshot body is
//
//	snapMagic | uvarint(len) applied state | { uvarint(len) key | uvarint(len) value }*
//
// where the applied state is storage.AppliedState's encoding and the pairs
// are every Pebble key of the group's spans, in order, read from one Pebble
// snapshot taken at that applied state.
var snapMagic = []byte("STRATA-SNAP-1\n")

// maxSnapshotKV bounds one key or value in a snapshot body, so a corrupt
// length cannot make the receiver allocate without bound.
const maxSnapshotKV = 64 << 20

// outboundSnapshot is a Pebble snapshot raft asked for, waiting to be sent.
type outboundSnapshot struct {
	snap    *pebble.Snapshot
	applied storage.AppliedState
	created time.Time
}

func (s *outboundSnapshot) release() { _ = s.snap.Close() }

// inboundSnapshot is a received snapshot staged until raft accepts it.
type inboundSnapshot struct {
	applied storage.AppliedState
	kvs     [][2][]byte
}

// buildSnapshot implements raft.Storage.Snapshot for g. Raft calls it with
// g.mu held (from Step, Tick or Ready).
func (n *Node) buildSnapshot(g *group) (*raftpb.Snapshot, error) {
	snap := n.eng.NewSnapshot()
	as, err := storage.LoadAppliedState(snap, g.id)
	if err != nil || as.Index == 0 {
		_ = snap.Close()
		if err == nil {
			err = raft.ErrSnapshotTemporarilyUnavailable
		}
		return nil, err
	}
	// Keep a few; drop the oldest so an unsent snapshot cannot pin old
	// data for long.
	const maxPending = 4
	for len(g.mu.snapOut) >= maxPending || (len(g.mu.snapOut) > 0 && time.Since(g.mu.snapOut[0].created) > time.Minute) {
		g.mu.snapOut[0].release()
		g.mu.snapOut = g.mu.snapOut[1:]
	}
	g.mu.snapOut = append(g.mu.snapOut, &outboundSnapshot{snap: snap, applied: as, created: time.Now()})
	return &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		Index:     proto.Uint64(as.Index),
		Term:      proto.Uint64(as.Term),
		ConfState: as.ConfState,
	}}, nil
}

// startSnapshotSend streams the snapshot of MsgSnap m to its target.
func (n *Node) startSnapshotSend(g *group, m *raftpb.Message) {
	idx := m.GetSnapshot().GetMetadata().GetIndex()
	g.mu.Lock()
	var out *outboundSnapshot
	for i, s := range g.mu.snapOut {
		if s.applied.Index == idx {
			out = s
			g.mu.snapOut = append(g.mu.snapOut[:i], g.mu.snapOut[i+1:]...)
			break
		}
	}
	if out == nil || n.tr == nil {
		g.mu.rn.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer out.release()
		err := n.sendSnapshot(g, m, out)
		status := raft.SnapshotFinish
		if err != nil {
			status = raft.SnapshotFailure
			n.stats.snapshotsFailed.Add(1)
		} else {
			n.stats.snapshotsSent.Add(1)
		}
		g.mu.Lock()
		g.mu.rn.ReportSnapshot(m.GetTo(), status)
		g.mu.Unlock()
		n.signal()
	}()
}

func (n *Node) sendSnapshot(g *group, m *raftpb.Message, out *outboundSnapshot) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	pr, pw := io.Pipe()
	written := make(chan struct{})
	go func() {
		defer close(written)
		pw.CloseWithError(writeSnapshotBody(pw, g.spans, out))
	}()
	err := n.tr.SendSnapshot(ctx, transport.Envelope{Group: g.id, Msg: m}, pr)
	// Unblock the writer if the send ended early, and wait for it: the
	// caller releases the Pebble snapshot it reads.
	pr.CloseWithError(errors.New("raftnode: snapshot send finished"))
	<-written
	return err
}

func writeSnapshotBody(w io.Writer, spans []Span, out *outboundSnapshot) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	if _, err := bw.Write(snapMagic); err != nil {
		return err
	}
	as, err := out.applied.Encode()
	if err != nil {
		return err
	}
	var lenBuf [binary.MaxVarintLen64]byte
	writeBytes := func(p []byte) error {
		if _, err := bw.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(p)))]); err != nil {
			return err
		}
		_, err := bw.Write(p)
		return err
	}
	if err := writeBytes(as); err != nil {
		return err
	}
	for _, s := range spans {
		it, err := out.snap.NewIter(&pebble.IterOptions{LowerBound: s.Start, UpperBound: s.End})
		if err != nil {
			return err
		}
		for valid := it.First(); valid; valid = it.Next() {
			v, err := it.ValueAndErr()
			if err == nil {
				err = writeBytes(it.Key())
			}
			if err == nil {
				err = writeBytes(v)
			}
			if err != nil {
				it.Close()
				return err
			}
		}
		if err := it.Close(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// HandleSnapshot receives a snapshot for a local group, stages its data and
// steps the MsgSnap into raft, which hands it back in a Ready to persist.
func (n *Node) HandleSnapshot(ctx context.Context, env transport.Envelope, body io.Reader) error {
	if err := n.Err(); err != nil {
		return stoppedErr(err)
	}
	g, err := n.group(env.Group)
	if err != nil {
		n.stats.unknownGroup.Add(1)
		return err
	}
	meta := env.Msg.GetSnapshot().GetMetadata()
	if env.Msg.GetType() != raftpb.MsgSnap || meta.GetIndex() == 0 {
		return errors.New("raftnode: snapshot envelope carries no MsgSnap")
	}
	if to := env.Msg.GetTo(); to != g.replicaID {
		n.stats.staleReplica.Add(1)
		return fmt.Errorf("%w: group %d: snapshot for replica %#x, local replica is %#x", ErrStaleReplica, g.id, to, g.replicaID)
	}
	// Checked before the body is read, and again when it is stepped.
	from := env.Msg.GetFrom()
	g.mu.Lock()
	ok := g.acceptsFromLocked(from)
	g.mu.Unlock()
	if !ok {
		n.stats.nonMember.Add(1)
		return fmt.Errorf("raftnode: group %d: snapshot from node %d, which is not a member", g.id, from)
	}
	in, err := readSnapshotBody(bufio.NewReaderSize(body, 256<<10), g.spans)
	if err != nil {
		return fmt.Errorf("raftnode: group %d snapshot: %w", g.id, err)
	}
	if in.applied.Index != meta.GetIndex() || in.applied.Term != meta.GetTerm() {
		return fmt.Errorf("raftnode: group %d snapshot body is at %d/%d, message at %d/%d",
			g.id, in.applied.Index, in.applied.Term, meta.GetIndex(), meta.GetTerm())
	}
	g.mu.Lock()
	if g.mu.removed {
		g.mu.Unlock()
		return fmt.Errorf("%w %d", ErrUnknownGroup, g.id)
	}
	if !g.acceptsFromLocked(from) {
		g.mu.Unlock()
		n.stats.nonMember.Add(1)
		return fmt.Errorf("raftnode: group %d: snapshot from node %d, which is not a member", g.id, from)
	}
	g.mu.snapIn[meta.GetIndex()] = in
	err = g.mu.rn.Step(env.Msg)
	if err != nil || !g.mu.rn.HasReady() {
		// Refused, or ignored without a word (a message of an older
		// term): raft will not hand it back. Otherwise the loop's next
		// Ready takes it or, if raft ignored it, drops it.
		delete(g.mu.snapIn, meta.GetIndex())
	}
	g.mu.Unlock()
	n.stats.snapshotsRecv.Add(1)
	n.signal()
	return err
}

func readSnapshotBody(r *bufio.Reader, spans []Span) (*inboundSnapshot, error) {
	magic := make([]byte, len(snapMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != string(snapMagic) {
		return nil, errors.New("not a snapshot body (bad magic)")
	}
	readBytes := func() ([]byte, error) {
		l, err := binary.ReadUvarint(r)
		if err != nil {
			return nil, err
		}
		if l > maxSnapshotKV {
			return nil, fmt.Errorf("record of %d bytes exceeds the limit", l)
		}
		p := make([]byte, l)
		_, err = io.ReadFull(r, p)
		return p, err
	}
	asBytes, err := readBytes()
	if err != nil {
		return nil, fmt.Errorf("applied state: %w", err)
	}
	as, err := storage.DecodeAppliedState(asBytes)
	if err != nil {
		return nil, err
	}
	in := &inboundSnapshot{applied: as}
	for {
		k, err := readBytes()
		if err == io.EOF {
			return in, nil
		}
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		v, err := readBytes()
		if err != nil {
			return nil, fmt.Errorf("value: %w", unexpected(err))
		}
		if !inSpans(k, spans) {
			return nil, fmt.Errorf("key %x outside the group's spans", k)
		}
		in.kvs = append(in.kvs, [2][]byte{k, v})
	}
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func inSpans(k []byte, spans []Span) bool {
	for _, s := range spans {
		if string(k) >= string(s.Start) && string(k) < string(s.End) {
			return true
		}
	}
	return false
}

// stageSnapshot writes the data of r's snapshot into b, replacing the
// group's state.
func (n *Node) stageSnapshot(b *pebble.Batch, r *ready) error {
	meta := r.rd.Snapshot.GetMetadata()
	if r.snap == nil {
		return fmt.Errorf("raftnode: group %d: raft applied snapshot %d whose data was not received", r.g.id, meta.GetIndex())
	}
	for _, s := range r.g.spans {
		if err := b.DeleteRange(s.Start, s.End, nil); err != nil {
			return err
		}
	}
	for _, kv := range r.snap.kvs {
		if err := b.Set(kv[0], kv[1], nil); err != nil {
			return err
		}
	}
	as := storage.AppliedState{Index: meta.GetIndex(), Term: meta.GetTerm(), ConfState: meta.GetConfState()}
	if err := storage.PutAppliedState(b, r.g.id, as); err != nil {
		return err
	}
	return r.g.log.StageSnapshot(b, meta)
}

// snapshotApplied updates a group after its snapshot was persisted.
func (n *Node) snapshotApplied(r *ready) {
	g, meta := r.g, r.rd.Snapshot.GetMetadata()
	g.applied = storage.AppliedState{Index: meta.GetIndex(), Term: meta.GetTerm(), ConfState: meta.GetConfState()}
	g.lastApplyTerm = meta.GetTerm()
	g.mu.Lock()
	g.mu.appliedIndex = meta.GetIndex()
	g.mu.confState = meta.GetConfState()
	// Proposals made before may be inside the snapshot or lost: unknown.
	for id, p := range g.mu.proposals {
		p.resolve(proposalResult{err: fmt.Errorf("%w: replica caught up by snapshot", ErrAmbiguous)})
		delete(g.mu.proposals, id)
	}
	g.mu.Unlock()
	r.confChanged = true
}
