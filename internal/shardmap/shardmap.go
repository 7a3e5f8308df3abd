// Package shardmap routes conversations to shards: by a stable hash of system_id, so
// all of one system's conversations live in one shard (one engine, one disk).
//
// The mapping is jump consistent hashing (Lamping and Veach, 2014) over the FNV-1a 64-bit
// hash of the system id: it needs no table, every process computes the same shard, and
// growing from N to N+1 shards moves only about 1/(N+1) of the systems (to the new shard).
// It is part of the on-disk contract (a test pins it): changing it would strand data.
package shardmap

import "hash/fnv"

// Of returns the shard, in [0, count), of systemID. count below 1 is taken as 1.
func Of(systemID string, count int) int {
	if count <= 1 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(systemID))
	return jump(h.Sum64(), count)
}

// jump is Lamping and Veach's jump consistent hash.
func jump(key uint64, buckets int) int {
	var b, j int64 = -1, 0
	for j < int64(buckets) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}
