// Command embedded shows Strata embedded in a Go program: it opens a
// single-node database in a directory (default ./strata-data), writes,
// reads, compares-and-swaps and scans a few keys, and prints what it did.
// Run it twice: the second run finds the first run's data.
//
//	go run ./examples/embedded -dir ./strata-data
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/strata-kv/strata"
)

func main() {
	dir := flag.String("dir", "./strata-data", "data directory")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "embedded:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	db, err := strata.Open(strata.Options{Dir: dir, Shards: 4})
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Printf("opened %s (node %d, %d shards) in %v\n", dir, db.NodeID(), len(db.Shards()), time.Since(start).Round(time.Millisecond))

	runs := 0
	if v, err := db.Get(ctx, []byte("demo/runs")); err == nil {
		fmt.Sscan(string(v), &runs)
	} else if !errors.Is(err, strata.ErrNotFound) {
		return err
	}
	runs++
	if err := db.Put(ctx, []byte("demo/runs"), []byte(fmt.Sprint(runs))); err != nil {
		return err
	}
	fmt.Printf("this is run %d on this directory\n", runs)

	for i, city := range []string{"lisbon", "oslo", "quito", "zagreb"} {
		if err := db.Put(ctx, []byte("demo/city/"+city), []byte(fmt.Sprint(i))); err != nil {
			return err
		}
	}
	swapped, err := db.CompareAndSwap(ctx, []byte("demo/lock"), nil, []byte("held"))
	if err != nil {
		return err
	}
	fmt.Printf("compare-and-swap of an absent demo/lock: swapped=%v\n", swapped)
	if swapped {
		if _, err := db.CompareAndSwap(ctx, []byte("demo/lock"), []byte("held"), nil); err != nil {
			return err
		}
	}
	kvs, err := db.Scan(ctx, []byte("demo/"), []byte("demo0"), 100)
	if err != nil {
		return err
	}
	fmt.Println("scan of demo/:")
	for _, kv := range kvs {
		fmt.Printf("  %s = %s\n", kv.Key, kv.Value)
	}
	return nil
}
