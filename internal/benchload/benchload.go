// Package benchload drives benchmarks that post a fixed set of jobs from several concurrent
// clients and reports throughput and per-job latency percentiles.
package benchload

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// Run calls do(i) for i in [0, jobs) from clients goroutines, timing only that part, and
// reports items/s (items per job, named unit), and the p50 and p99 job latency in ms.
func Run(b *testing.B, jobs, clients, itemsPerJob int, unit string, do func(i int) error) {
	b.Helper()
	var (
		mu  sync.Mutex
		lat = make([]time.Duration, 0, jobs)
		wg  sync.WaitGroup
		idx = make(chan int, jobs)
	)
	for i := range jobs {
		idx <- i
	}
	close(idx)
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				t := time.Now()
				if err := do(i); err != nil {
					b.Error(err)
					return
				}
				d := time.Since(t)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat)*itemsPerJob)/elapsed.Seconds(), unit+"/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
