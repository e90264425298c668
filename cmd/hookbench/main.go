// Command hookbench is hookgate's benchmark suite. It starts a hookgate
// binary on generated configurations, a flow-engine sink and a bare
// fasthttp server as subprocesses, drives each scenario closed loop and
// open loop, prints a markdown table and writes <date>.json and <date>.svg
// (<date>b.* for the day's second full run, and so on).
// The logic lives in package bench; main only wires flags to it.
//
//	hookbench [flags]              run the suite
//	hookbench sink -listen ADDR [-socket PATH]
//	                               the flow-engine sink (started by the suite)
//	hookbench bare -listen ADDR    the bare baseline server (started by the suite)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hookgate/hookgate/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hookbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) > 0 {
		if server, ok := bench.ParseServer(args[0]); ok {
			fs := flag.NewFlagSet(args[0], flag.ExitOnError)
			listen := fs.String("listen", "127.0.0.1:0", "address to listen on (port 0 picks one)")
			socket := fs.String("socket", "", "a Unix socket to serve on as well")
			to := fs.String("to", "", "relay: the sink's address (host:port)")
			_ = fs.Parse(args[1:])
			return bench.Serve(ctx, server, *listen, *socket, *to, os.Stdout)
		}
	}

	fs := flag.NewFlagSet("hookbench", flag.ExitOnError)
	var o bench.Options
	fs.StringVar(&o.Hookgate, "hookgate", bench.DefaultHookgate, "hookgate binary to run (build it first: make build)")
	fs.DurationVar(&o.Duration, "duration", 0, "measured time per run (default 5s; 1s with -quick)")
	fs.IntVar(&o.Conns, "conns", bench.DefaultConns, "connections per run")
	fs.StringVar(&o.Scenarios, "scenarios", "", `comma-separated scenarios or "all" (default all; with -quick `+
		fmt.Sprint(bench.QuickScenarios)+")")
	fs.Float64Var(&o.Rate, "rate", 0, "open-loop requests/s (default: half of each scenario's closed-loop max)")
	fs.IntVar(&o.Rounds, "rounds", 1, "closed-loop runs per scenario, each beside a bare run; the median ratio is reported")
	fs.BoolVar(&o.Quick, "quick", false, "smoke run: 1s per run, few scenarios")
	fs.StringVar(&o.LogLevel, "log-level", "warn", "the gateway's log level")
	fs.StringVar(&o.WorkDir, "workdir", "", "where to make the run's temporary directory (default: the system's)")
	out := fs.String("out", "bench/results", "directory for <date>.json and <date>.svg")
	list := fs.Bool("list", false, "list the scenarios and exit")
	_ = fs.Parse(args)
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *list {
		for _, s := range bench.Scenarios() {
			fmt.Printf("%-16s %s\n", s.Name, s.About)
		}
		return nil
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	suite, cleanup, err := o.Suite([]string{self}, os.Stderr)
	if err != nil {
		return err
	}
	defer cleanup()
	rep, err := suite.Run(ctx)
	if rep == nil {
		return err
	}
	if werr := rep.WriteMarkdown(os.Stdout); werr != nil {
		return werr
	}
	jsonPath, svgPath, serr := rep.Save(*out)
	if serr != nil {
		return serr
	}
	fmt.Fprintf(os.Stderr, "wrote %s and %s\n", jsonPath, svgPath)
	return err
}
