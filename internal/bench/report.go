package bench

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
)

// Report is the output of `jobstream bench --json`.
type Report struct {
	Machine Machine  `json:"machine"`
	Results []Result `json:"results"`
	// BatchedOverNaive is written_tps(batched) / written_tps(naive), when
	// both were run.
	BatchedOverNaive float64 `json:"batched_over_naive,omitempty"`
	// Against the raw group-commit load (--compare raw), when it was run:
	// jobstream's (batched) delivered tokens/s over raw's, and its machine
	// CPU (server + PostgreSQL) per delivered token over raw's.
	DeliveredOverRaw   float64 `json:"delivered_over_raw,omitempty"`
	CPUPerTokenOverRaw float64 `json:"cpu_per_token_over_raw,omitempty"`
}

// Machine describes where a run happened.
type Machine struct {
	CPUs     int    `json:"cpus"`
	MemoryGB int    `json:"memory_gb"`
	Go       string `json:"go"`
	OS       string `json:"os"`
}

// ThisMachine describes the current machine.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		for _, line := range strings.Split(string(b), "\n") {
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
				m.MemoryGB = (kb + 512*1024) / (1024 * 1024)
				break
			}
		}
	}
	return m
}

// NewReport builds a report of results, with the batched/naive ratio when
// both write modes were run on the same workload.
func NewReport(results []Result) Report {
	r := Report{Machine: ThisMachine(), Results: results}
	var batched, naive float64
	var js, raw *Result
	for i, res := range results {
		switch res.WriteMode {
		case "batched":
			batched = res.WrittenTPS
			js = &results[i]
		case "naive":
			naive = res.WrittenTPS
		case WriteModeRaw:
			raw = &results[i]
		}
	}
	if batched > 0 && naive > 0 {
		r.BatchedOverNaive = batched / naive
	}
	if js != nil && raw != nil {
		if raw.DeliveredTPS > 0 {
			r.DeliveredOverRaw = js.DeliveredTPS / raw.DeliveredTPS
		}
		if a, b := js.MachineUSPerToken(), raw.MachineUSPerToken(); a >= 0 && b > 0 {
			r.CPUPerTokenOverRaw = a / b
		}
	}
	return r
}

// WriteTable prints the report as a table, one column per result.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, f func(Result) string) {
		fmt.Fprintf(tw, "%s\t", name)
		for _, res := range r.Results {
			fmt.Fprintf(tw, "%s\t", f(res))
		}
		fmt.Fprintln(tw)
	}
	num := func(v float64) string {
		if v < 0 {
			return "n/a"
		}
		if v >= 100 {
			return fmt.Sprintf("%.0f", v)
		}
		return fmt.Sprintf("%.2f", v)
	}
	row("mode", func(x Result) string { return x.Mode })
	row("write mode", func(x Result) string { return x.WriteMode })
	row("streams x readers", func(x Result) string { return fmt.Sprintf("%d x %d", x.Streams, x.Readers) })
	row("rate (tokens/s/stream)", func(x Result) string { return num(x.Rate) })
	row("window (s)", func(x Result) string { return num(x.Seconds) })
	row("jobs", func(x Result) string { return fmt.Sprint(x.Jobs) })
	row("wanted tokens/s", func(x Result) string { return num(x.WantedTPS) })
	row("written chunks/s", func(x Result) string { return num(x.WrittenTPS) })
	row("delivered tokens/s", func(x Result) string { return num(x.DeliveredTPS) })
	row("latency p50 (ms)", func(x Result) string { return num(x.LatencyMS.P50) })
	row("latency p95 (ms)", func(x Result) string { return num(x.LatencyMS.P95) })
	row("latency p99 (ms)", func(x Result) string { return num(x.LatencyMS.P99) })
	row("latency max (ms)", func(x Result) string { return num(x.LatencyMS.Max) })
	row("latency samples", func(x Result) string { return fmt.Sprint(x.Samples) })
	row("requests/token", func(x Result) string { return fmt.Sprintf("%.3f", x.RequestsPerToken) })
	row("commits/s", func(x Result) string { return num(x.CommitsPerS) })
	row("commit mean (ms)", func(x Result) string { return num(x.CommitMS) })
	row("rows/commit", func(x Result) string { return num(x.BatchRows) })
	row("NOTIFYs/s", func(x Result) string { return num(x.NotifiesPerS) })
	row("read queries/s", func(x Result) string { return num(x.ReadQueriesPerS) })
	row("server CPU (cores)", func(x Result) string { return num(x.ServerCPU) })
	row("postgres CPU (cores)", func(x Result) string { return num(x.PostgresCPU) })
	row("bench CPU (cores)", func(x Result) string { return num(x.BenchCPU) })
	row("server CPU (µs/token)", func(x Result) string { return num(x.ServerUSPerToken) })
	row("postgres CPU (µs/token)", func(x Result) string { return num(x.PostgresUSPerToken) })
	row("load avg (1m)", func(x Result) string { return num(x.Load) })
	row("lost", func(x Result) string { return fmt.Sprint(x.Lost) })
	row("duplicated", func(x Result) string { return fmt.Sprint(x.Duplicated) })
	row("reordered", func(x Result) string { return fmt.Sprint(x.Reordered) })
	row("failed", func(x Result) string { return fmt.Sprint(x.Failed) })
	row("completed / cancelled", func(x Result) string { return fmt.Sprintf("%d / %d", x.Completed, x.Cancelled) })
	row("queued mean / max (s)", func(x Result) string {
		if x.QueuedMaxS < 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f / %.2f", x.QueuedMeanS, x.QueuedMaxS)
	})
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nmachine: %d CPUs, %d GiB, %s, %s\n", r.Machine.CPUs, r.Machine.MemoryGB, r.Machine.OS, r.Machine.Go)
	if r.BatchedOverNaive > 0 {
		fmt.Fprintf(w, "batched / naive written chunks/s: %.1fx\n", r.BatchedOverNaive)
	}
	if r.DeliveredOverRaw > 0 {
		fmt.Fprintf(w, "jobstream / raw delivered tokens/s: %.2f\n", r.DeliveredOverRaw)
	}
	if r.CPUPerTokenOverRaw > 0 {
		fmt.Fprintf(w, "jobstream / raw machine CPU per token (server + postgres): %.2fx\n", r.CPUPerTokenOverRaw)
	}
	for _, res := range r.Results {
		for _, e := range res.Errors {
			fmt.Fprintf(w, "error (%s, %s): %s\n", res.Mode, res.WriteMode, e)
		}
	}
	return nil
}

func newFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}
