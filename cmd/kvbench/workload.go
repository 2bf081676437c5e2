package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// Key layout: every key is keySize bytes: two bytes of a hash of the key's
// index (so that consecutive indexes, and the hot items of a zipfian
// distribution, land on every shard: Strata splits its initial shards
// evenly over the first key byte), then the index in decimal, zero-padded
// to fill the rest. Distinct indexes give distinct keys.

// minKeySize is the smallest key size that holds every index of keySpace.
func minKeySize(keySpace int64) int {
	return 2 + len(strconv.FormatInt(max(keySpace-1, 0), 10))
}

// encodeKey appends the key of index i to dst and returns it.
func encodeKey(dst []byte, i int64, keySize int) []byte {
	h := mix64(uint64(i))
	dst = binary.BigEndian.AppendUint16(dst, uint16(h>>48))
	digits := strconv.FormatInt(i, 10)
	for n := keySize - 2 - len(digits); n > 0; n-- {
		dst = append(dst, '0')
	}
	return append(dst, digits...)
}

// mix64 is a bijective 64-bit mixer (splitmix64's finaliser).
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// keyChooser picks key indexes in [0, n).
type keyChooser interface {
	next(r *rand.Rand) int64
}

type uniformChooser struct{ n int64 }

func (u uniformChooser) next(r *rand.Rand) int64 { return r.Int64N(u.n) }

// zipfChooser is YCSB's zipfian generator (Gray et al., "Quickly
// generating billion-record synthetic databases"), with theta < 1 as YCSB
// uses (0.99); math/rand's Zipf needs s > 1. Item 0 is the most popular;
// the key layout's hash prefix spreads the popular items over the key
// space, as YCSB's "scrambled" zipfian does. Safe for concurrent use: it
// holds only constants.
type zipfChooser struct {
	n                   int64
	theta, alpha, zetan float64
	eta, half           float64
}

// defaultTheta is YCSB's zipfian constant.
const defaultTheta = 0.99

func newZipfChooser(n int64, theta float64) *zipfChooser {
	zeta2 := zeta(2, theta)
	z := &zipfChooser{n: n, theta: theta, zetan: zeta(n, theta)}
	z.alpha = 1 / (1 - theta)
	z.eta = (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta2/z.zetan)
	z.half = 1 + math.Pow(0.5, theta)
	return z
}

func zeta(n int64, theta float64) float64 {
	var s float64
	for i := int64(1); i <= n; i++ {
		s += 1 / math.Pow(float64(i), theta)
	}
	return s
}

func (z *zipfChooser) next(r *rand.Rand) int64 {
	u := r.Float64()
	uz := u * z.zetan
	if uz < 1 {
		return 0
	}
	if uz < z.half {
		return min(1, z.n-1)
	}
	v := int64(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	return min(max(v, 0), z.n-1)
}

// newChooser returns the chooser of a distribution name.
func newChooser(dist string, n int64) (keyChooser, error) {
	switch dist {
	case "uniform":
		return uniformChooser{n: n}, nil
	case "zipfian":
		return newZipfChooser(n, defaultTheta), nil
	}
	return nil, fmt.Errorf("unknown key distribution %q (want uniform or zipfian)", dist)
}

// distinctKeys fills idx with len(idx) distinct indexes drawn from c (a
// batch must not name a key twice: etcd rejects such a Txn). n must be
// at least len(idx); with a skewed chooser it falls back to uniform draws
// after many repeats so that it always ends.
func distinctKeys(r *rand.Rand, c keyChooser, n int64, idx []int64, seen map[int64]struct{}) {
	clear(seen)
	tries := 0
	for i := 0; i < len(idx); {
		var k int64
		if tries < 20*len(idx) {
			k = c.next(r)
		} else {
			k = r.Int64N(n)
		}
		tries++
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		idx[i] = k
		i++
	}
}

// scheduledAt is when the i-th request (from 0) of an open-loop run at
// rate requests per second that starts at start is due. Latency is
// measured from this time, not from when the request was sent, so a slow
// server is charged for the requests it delayed (no coordinated omission).
func scheduledAt(start time.Time, rate float64, i int64) time.Time {
	return start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
}
