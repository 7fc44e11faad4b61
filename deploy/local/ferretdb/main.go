// Command novamind-ferretdb runs FerretDB v1.24.2 (MongoDB wire protocol, SQLite backend) for
// local development and CI, through FerretDB's embeddable package. Telemetry is off in this mode.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	sqliteURL := flag.String("sqlite-url", "file:data/", "SQLite directory URI (must end with /)")
	tlsAddr := flag.String("listen-tls", "", "TLS address to listen on (optional)")
	tlsCert := flag.String("listen-tls-cert-file", "", "TLS certificate file")
	tlsKey := flag.String("listen-tls-key-file", "", "TLS key file")
	level := flag.String("log-level", "warn", "log level: debug, info, warn, error")
	flag.Parse()

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(os.Stderr, "novamind-ferretdb: bad --log-level %q: %v\n", *level, err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{
			TCP: *listen, TLS: *tlsAddr, TLSCertFile: *tlsCert, TLSKeyFile: *tlsKey,
		},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: *sqliteURL,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "novamind-ferretdb: %v\n", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("listening", "addr", *listen, "sqlite", *sqliteURL)
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "novamind-ferretdb: %v\n", err)
		os.Exit(1)
	}
}
