package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// addWorkerMetric adds what the worker's own dispatch histogram recorded
// between two scrapes, and from it the mean time from the claim's commit to
// the handler's start, which the database cannot show.
func (d *dispatchResult) addWorkerMetric(before, after histogram, scrapeErr error) {
	if scrapeErr != nil {
		d.WorkerMetricError = scrapeErr.Error()
		return
	}
	steps := after.count - before.count
	if steps <= 0 {
		d.WorkerMetricError = "the worker recorded no dispatch between the scrapes"
		return
	}
	m := &workerMetric{
		Steps:  int64(steps),
		MeanMs: (after.sum - before.sum) / steps * 1000,
		Within: map[string]float64{},
	}
	for le, n := range after.buckets {
		m.Within[le] = (n - before.buckets[le]) / steps
	}
	d.WorkerMetric = m
	rest := m.MeanMs - d.EnqueuedAtToClaimCommit.MeanMs
	d.ClaimCommitToHandlerMeanMs = &rest
	whole := d.EnqueueCommitToClaimCommit.shifted(rest)
	d.EnqueueCommitToHandlerStart = &whole
}

// dispatchMetric is the worker's histogram of the time from a step
// message's enqueued_at to its handler's start.
const dispatchMetric = "tasker_step_dispatch_latency_seconds"

// histogram is one scrape of a Prometheus histogram, summed over its
// label sets.
type histogram struct {
	sum, count float64
	// buckets maps each upper bound ("0.002") to its cumulative count.
	buckets map[string]float64
}

// bucketBound finds the le label of a bucket line.
var bucketBound = regexp.MustCompile(`le="([^"]+)"`)

// scrapeDispatch reads the worker's dispatch histogram from its /metrics.
func scrapeDispatch(ctx context.Context, addr string) (histogram, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return histogram{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return histogram{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return histogram{}, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	h := histogram{buckets: map[string]float64{}}
	found := false
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for lines.Scan() {
		line := lines.Text()
		end := strings.IndexAny(line, "{ ")
		if end < 0 || !strings.HasPrefix(line, dispatchMetric+"_") {
			continue
		}
		name, labels := line[:end], line[end:]
		value, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return histogram{}, fmt.Errorf("%q: %w", line, err)
		}
		found = true
		switch strings.TrimPrefix(name, dispatchMetric+"_") {
		case "sum":
			h.sum += value
		case "count":
			h.count += value
		case "bucket":
			if m := bucketBound.FindStringSubmatch(labels); m != nil {
				h.buckets[m[1]] += value
			}
		}
	}
	if err := lines.Err(); err != nil {
		return histogram{}, err
	}
	if !found {
		return histogram{}, fmt.Errorf("the worker's /metrics has no %s", dispatchMetric)
	}
	return h, nil
}
