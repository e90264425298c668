// Command hookgate is the webhook trigger gateway: serve runs it, check
// validates a configuration, token prints a fresh secret, urls prints each
// automation's webhook URL. main only wires the packages together.
package main

import (
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hookgate/hookgate/cluster"
	"github.com/hookgate/hookgate/downstream"
	"github.com/hookgate/hookgate/gateway"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const defaultConfig = "configs/hookgate.yaml"

func usage() {
	fmt.Fprint(os.Stderr, `usage: hookgate <command> [flags]

commands:
  serve  -config FILE   run the gateway (default FILE: configs/hookgate.yaml)
  check  -config FILE   validate a configuration
  token                 print a fresh webhook token or credential
  urls   -config FILE   print each automation's webhook URL (-curl: a curl that fires it)
  sign   -config FILE -automation ID -body FILE
                        print the signature headers (or query) for body, and a curl
                        that sends it (reads the body from stdin with -body -)
  version               print the version
`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "serve":
		err = serve(args)
	case "check":
		err = check(args)
	case "token":
		err = token()
	case "urls":
		err = urls(args)
	case "sign":
		err = sign(args)
	case "version":
		fmt.Println("hookgate", version)
	case "-h", "--help", "help":
		usage()
	default:
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hookgate:", err)
		os.Exit(1)
	}
}

func configFlag(name string, args []string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	path := fs.String("config", defaultConfig, "configuration file")
	return fs, path
}

// parseFlags parses a command's flags and refuses any argument left after
// them (exit 2, as for a bad flag): a file named without -config would
// otherwise be passed over for the default one.
func parseFlags(fs *flag.FlagSet, args []string) {
	_ = fs.Parse(args)
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "hookgate %s: unexpected argument %q; name the configuration file with -config FILE\n", fs.Name(), fs.Arg(0))
		os.Exit(2)
	}
}

func check(args []string) error {
	fs, path := configFlag("check", args)
	parseFlags(fs, args)
	cfg, err := gateway.LoadFile(*path)
	if err != nil {
		return err
	}
	n := 0
	for _, t := range cfg.Tables {
		n += len(t.Automations)
	}
	fmt.Printf("%s: OK, %d tables, %d automations\n", *path, len(cfg.Tables), n)
	for _, line := range gateway.Summary(cfg) {
		fmt.Println(line)
	}
	return nil
}

func token() error {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	fmt.Println(base64.RawURLEncoding.EncodeToString(b[:]))
	return nil
}

func urls(args []string) error {
	fs, path := configFlag("urls", args)
	curl := fs.Bool("curl", false, "print a curl command that fires each automation")
	parseFlags(fs, args)
	cfg, err := gateway.LoadFile(*path)
	if err != nil {
		return err
	}
	for _, t := range cfg.Tables {
		for i := range t.Automations {
			a := &t.Automations[i]
			if *curl {
				fmt.Printf("# %s/%s\n%s\n", t.ID, a.ID, gateway.ExampleCurl(cfg, a))
			} else {
				fmt.Printf("%s/%s\t%s\n", t.ID, a.ID, gateway.WebhookURL(cfg, a))
			}
		}
	}
	return nil
}

func sign(args []string) error {
	fs, path := configFlag("sign", args)
	automation := fs.String("automation", "", "automation id")
	bodyFile := fs.String("body", "-", "file holding the body; - for stdin")
	id := fs.String("id", "", "delivery id for standard-webhooks (default: a fresh one)")
	parseFlags(fs, args)
	cfg, err := gateway.LoadFile(*path)
	if err != nil {
		return err
	}
	var body []byte
	if *bodyFile == "-" {
		body, err = io.ReadAll(os.Stdin)
	} else {
		body, err = os.ReadFile(*bodyFile)
	}
	if err != nil {
		return err
	}
	headers, curl, err := gateway.SignedCurl(cfg, *automation, body, time.Now(), *id)
	if err != nil {
		return err
	}
	for _, h := range headers {
		fmt.Println(h)
	}
	if *bodyFile == "-" {
		fmt.Printf("# send it, with the same body on stdin:\n%s\n", curl)
		return nil
	}
	fmt.Printf("# send it (the body on stdin):\n%s < %s\n", curl, gateway.ShellQuote(*bodyFile))
	return nil
}

func serve(args []string) error {
	fs, path := configFlag("serve", args)
	parseFlags(fs, args)
	// Signals are taken from the start, so one that arrives while the
	// gateway starts is handled once it has (a reload, or a graceful
	// stop), not by its default action, which ends the process. Reloads
	// and stops have channels of their own: a queued SIGHUP can't crowd
	// out a SIGTERM.
	hup, stop := make(chan os.Signal, 1), make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	cfg, err := gateway.LoadFile(*path)
	if err != nil {
		return err
	}
	log, level, stopLog, err := gateway.NewLogger(cfg.Log)
	if err != nil {
		return err
	}
	defer stopLog()

	sink, err := downstream.Open(downstream.Config{
		URL:      cfg.Downstream.URL,
		Socket:   cfg.Downstream.Socket,
		Timeout:  time.Duration(cfg.Downstream.Timeout),
		MaxConns: cfg.Downstream.MaxConns,
		Pipeline: cfg.Downstream.Pipeline,
		// The body cap is fixed until restart, like the sink.
		MaxEventBytes: cfg.MaxEventBytes(),
	})
	if err != nil {
		return err
	}
	defer sink.Close()
	opts := gateway.Options{Forwarder: sink, Log: log, Level: level}
	if cfg.Cluster.RedisURL != "" {
		cl, err := cluster.Open(cluster.Config{
			URL:         cfg.Cluster.RedisURL,
			Timeout:     time.Duration(cfg.Cluster.Timeout),
			Prefix:      cfg.Cluster.Prefix,
			Window:      time.Duration(cfg.IdempotencyWindow),
			InFlightTTL: time.Duration(cfg.Cluster.InFlightTTL),
			Log:         log,
		})
		if err != nil {
			return err
		}
		// Deferred first, so it runs last: after the server has stopped.
		defer cl.Close()
		opts.Limits, opts.Tokens, opts.ClusterStats = cl.Limiter(), cl.Tokens(), cl.Stats
	}
	gw, err := gateway.New(cfg, opts)
	if err != nil {
		return err
	}
	defer gw.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := gw.NewServer(cfg)
	served := make(chan error, 2)
	go func() { served <- srv.Serve(ln) }()

	var admin *gateway.Admin
	// reloadMu makes each reload — SIGHUP, the file watcher, POST
	// /reload — read, compile and swap in the file as one step, so a
	// reload that read an older file is never swapped in after a newer one.
	var reloadMu sync.Mutex
	reload := func() (uint64, []string, error) {
		reloadMu.Lock()
		defer reloadMu.Unlock()
		gen, pending, err := gw.ReloadFile(*path)
		if admin != nil {
			admin.SetReloadResult(pending, err)
		}
		return gen, pending, err
	}
	adminAddr := "off"
	if cfg.AdminListen != "" {
		admin = gw.NewAdmin(cfg.AdminToken, *path, reload)
		aln, err := net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			srv.Shutdown()
			return fmt.Errorf("admin_listen: %w", err)
		}
		adminAddr = aln.Addr().String()
		aln = gateway.RetryAccept(aln, log)
		asrv := admin.NewServer()
		go func() { served <- asrv.Serve(aln) }()
		defer asrv.Shutdown()
	}
	stopWatch, err := gateway.WatchFile(*path, 200*time.Millisecond, log, func() { reload() })
	if err != nil {
		log.Warn("configuration file changes will not be noticed; use SIGHUP or POST /reload", zap.Error(err))
		stopWatch = func() {}
	}
	defer stopWatch()

	n := 0
	for _, t := range cfg.Tables {
		n += len(t.Automations)
	}
	log.Info("hookgate started", zap.String("version", version), zap.String("config", *path),
		zap.Uint64("generation", gw.Generation()), zap.String("listen", ln.Addr().String()),
		zap.String("admin_listen", adminAddr), zap.String("downstream", gateway.RedactURL(cfg.Downstream.URL)),
		zap.String("downstream_socket", cfg.Downstream.Socket), zap.Bool("cluster", cfg.Cluster.RedisURL != ""), zap.Int("tables", len(cfg.Tables)), zap.Int("automations", n))

	for {
		select {
		case err := <-served:
			// A listener failed: the webhook requests in flight are
			// still answered before the sink closes.
			if serr := srv.Shutdown(); serr != nil {
				log.Error("shutdown", zap.Error(serr))
			}
			return fmt.Errorf("serve: %w", err)
		case <-hup:
			reload()
		case s := <-stop:
			log.Info("stopping", zap.String("signal", s.String()))
			if admin != nil {
				admin.Stopping()
			}
			// Shutdown stops accepting and waits for in-flight requests;
			// only then is the sink closed, so every answered event is in.
			if err := srv.Shutdown(); err != nil {
				log.Error("shutdown", zap.Error(err))
			}
			if err := sink.Close(); err != nil {
				log.Error("closing flow engine sink", zap.Error(err))
				return err
			}
			log.Info("stopped")
			return nil
		}
	}
}
