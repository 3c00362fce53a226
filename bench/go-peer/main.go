// The peer anchor for `npm run bench -- ct`: the same sequential no-op activity chain our
// bench runs, from a worker on the Go SDK against the same dev server, so our round trip is
// read beside what another SDK gets from that server.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

func Noop(ctx context.Context, i int) (int, error) { return i, nil }

func Chain(ctx workflow.Context, steps int) (int, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	sum := 0
	for i := 0; i < steps; i++ {
		var out int
		if err := workflow.ExecuteActivity(ctx, Noop, i).Get(ctx, &out); err != nil {
			return 0, err
		}
		sum += out
	}
	return sum, nil
}

func main() {
	address := flag.String("address", "127.0.0.1:7233", "Temporal frontend")
	namespace := flag.String("namespace", "default", "namespace")
	steps := flag.Int("steps", 20, "activities per workflow")
	runs := flag.Int("runs", 7, "measured workflows")
	flag.Parse()

	c, err := client.Dial(client.Options{HostPort: *address, Namespace: *namespace, Logger: tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer c.Close()
	queue := fmt.Sprintf("go-peer-%d", time.Now().UnixNano())
	w := worker.New(c, queue, worker.Options{})
	w.RegisterWorkflow(Chain)
	w.RegisterActivity(Noop)
	if err := w.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer w.Stop()

	run := func(i int) (float64, error) {
		start := time.Now()
		wf, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: fmt.Sprintf("%s-%d", queue, i), TaskQueue: queue}, Chain, *steps)
		if err != nil {
			return 0, err
		}
		var out int
		if err := wf.Get(context.Background(), &out); err != nil {
			return 0, err
		}
		return float64(time.Since(start).Microseconds()) / 1000 / float64(*steps), nil
	}
	// The first workflow after a worker starts is not what a long-lived worker sees.
	if _, err := run(-1); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	perActivity := make([]float64, 0, *runs)
	for i := 0; i < *runs; i++ {
		v, err := run(i)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		perActivity = append(perActivity, v)
	}
	sorted := append([]float64(nil), perActivity...)
	sort.Float64s(sorted)
	median := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		median = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"steps": *steps, "perActivityMs": perActivity, "medianMs": median})
}
