package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/strata-kv/strata/client"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// target is one connection to the system under test. A run opens
// Config.Conns of them and shares them among its clients; each is safe
// for concurrent use.
type target interface {
	// get reads key; a missing key is found=false, not an error.
	get(ctx context.Context, key []byte) (found bool, err error)
	put(ctx context.Context, key, value []byte) error
	// scan reads up to limit keys from start on.
	scan(ctx context.Context, start []byte, limit int) (n int, err error)
	// batch writes all keys with value in one call.
	batch(ctx context.Context, keys [][]byte, value []byte) error
	// readModifyWrite reads key and writes value if key did not change in
	// between; swapped says whether it did.
	readModifyWrite(ctx context.Context, key, value []byte) (swapped bool, err error)
	Close() error
}

// Read levels.
const (
	readLinearizable = "linearizable"
	readSerializable = "serializable"
)

// openTarget opens one connection of cfg's system.
func openTarget(cfg *Config) (target, error) {
	switch cfg.System {
	case "strata":
		c, err := client.New(client.Config{Endpoints: cfg.Endpoints, RequestTimeout: cfg.Timeout})
		if err != nil {
			return nil, err
		}
		return &strataTarget{c: c, serializable: cfg.ReadLevel == readSerializable}, nil
	case "etcd":
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   cfg.Endpoints,
			DialTimeout: cfg.Timeout,
			Logger:      zap.NewNop(),
			// Room for a batch of 1,000 puts and a long scan.
			MaxCallSendMsgSize: 64 << 20,
			MaxCallRecvMsgSize: 64 << 20,
		})
		if err != nil {
			return nil, err
		}
		return &etcdTarget{c: c, serializable: cfg.ReadLevel == readSerializable}, nil
	}
	return nil, fmt.Errorf("unknown system %q", cfg.System)
}

// strataTarget speaks to Strata through package client.
type strataTarget struct {
	c            *client.Client
	serializable bool // reads at the serializable level (GetSerializable)
}

func (t *strataTarget) get(ctx context.Context, key []byte) (bool, error) {
	get := t.c.Get
	if t.serializable {
		get = t.c.GetSerializable
	}
	_, err := get(ctx, key)
	if errors.Is(err, client.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (t *strataTarget) put(ctx context.Context, key, value []byte) error {
	return t.c.Put(ctx, key, value)
}

func (t *strataTarget) scan(ctx context.Context, start []byte, limit int) (int, error) {
	kvs, err := t.c.Scan(ctx, start, nil, limit)
	return len(kvs), err
}

func (t *strataTarget) batch(ctx context.Context, keys [][]byte, value []byte) error {
	ms := make([]client.Mutation, len(keys))
	for i, k := range keys {
		ms[i] = client.Mutation{Key: k, Value: value}
	}
	return t.c.Batch(ctx, ms)
}

func (t *strataTarget) readModifyWrite(ctx context.Context, key, value []byte) (bool, error) {
	old, err := t.c.Get(ctx, key)
	if errors.Is(err, client.ErrNotFound) {
		old, err = nil, nil // CompareAndSwap's nil old: "absent"
	}
	if err != nil {
		return false, err
	}
	return t.c.CompareAndSwap(ctx, key, old, value)
}

func (t *strataTarget) Close() error { return t.c.Close() }

// etcdTarget speaks to etcd v3 through its Go client.
type etcdTarget struct {
	c            *clientv3.Client
	serializable bool
}

func (t *etcdTarget) getOpts(extra ...clientv3.OpOption) []clientv3.OpOption {
	if t.serializable {
		extra = append(extra, clientv3.WithSerializable())
	}
	return extra
}

func (t *etcdTarget) get(ctx context.Context, key []byte) (bool, error) {
	resp, err := t.c.Get(ctx, string(key), t.getOpts()...)
	if err != nil {
		return false, err
	}
	return len(resp.Kvs) > 0, nil
}

func (t *etcdTarget) put(ctx context.Context, key, value []byte) error {
	_, err := t.c.Put(ctx, string(key), string(value))
	return err
}

func (t *etcdTarget) scan(ctx context.Context, start []byte, limit int) (int, error) {
	resp, err := t.c.Get(ctx, string(start), t.getOpts(clientv3.WithFromKey(), clientv3.WithLimit(int64(limit)))...)
	if err != nil {
		return 0, err
	}
	return len(resp.Kvs), nil
}

func (t *etcdTarget) batch(ctx context.Context, keys [][]byte, value []byte) error {
	ops := make([]clientv3.Op, len(keys))
	v := string(value)
	for i, k := range keys {
		ops[i] = clientv3.OpPut(string(k), v)
	}
	_, err := t.c.Txn(ctx).Then(ops...).Commit()
	return err
}

func (t *etcdTarget) readModifyWrite(ctx context.Context, key, value []byte) (bool, error) {
	k := string(key)
	resp, err := t.c.Get(ctx, k)
	if err != nil {
		return false, err
	}
	var rev int64 // 0: absent
	if len(resp.Kvs) > 0 {
		rev = resp.Kvs[0].ModRevision
	}
	tr, err := t.c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", rev)).Then(clientv3.OpPut(k, string(value))).Commit()
	if err != nil {
		return false, err
	}
	return tr.Succeeded, nil
}

func (t *etcdTarget) Close() error { return t.c.Close() }

// probe checks that cfg's target answers a linearizable read (so that it
// is up and has a quorum) before any load is sent.
func probe(ctx context.Context, cfg *Config) error {
	t, err := openTarget(cfg)
	if err != nil {
		return err
	}
	defer t.Close()
	ctx, cancel := context.WithTimeout(ctx, cfg.ProbeTimeout)
	defer cancel()
	if st, ok := t.(*strataTarget); ok {
		if _, err := st.c.Status(ctx); err != nil {
			return err
		}
	}
	if et, ok := t.(*etcdTarget); ok {
		// Without a server the etcd client waits for its deadline; say
		// which endpoints were tried.
		if _, err := et.c.Get(ctx, "kvbench/probe"); err != nil {
			return fmt.Errorf("%w (endpoints %s)", err, strings.Join(cfg.Endpoints, ","))
		}
		return nil
	}
	_, err = t.get(ctx, []byte("kvbench/probe"))
	return err
}

// errorKind names the kind of a failed operation for the error counts.
func errorKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, client.ErrAmbiguous):
		return "ambiguous"
	case errors.Is(err, client.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, client.ErrInvalidArgument):
		return "invalid_argument"
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.OK && st.Code() != codes.Unknown {
		return strings.ToLower(st.Code().String())
	}
	return "other"
}
