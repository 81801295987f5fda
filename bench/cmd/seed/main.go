// Command seed loads N links into a shortfleet primary with COPY, waits
// until every replica given has replayed them, and optionally writes their
// codes to a file for the wrk scripts:
//
//	SHORTFLEET_DSN=postgres://... SHORTFLEET_CODE_KEY=... \
//	  go run ./bench/cmd/seed -links 10000000 -replicas postgres://...,postgres://... -codes codes.txt
//
// The benchmark driver (bench/cmd/report) calls the same code in-process.
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"shortfleet/bench/internal/seed"
	"shortfleet/sql/codes"
)

func main() {
	var (
		n        = flag.Int64("links", 1_000_000, "links to load")
		workers  = flag.Int("workers", 2, "connections that COPY at once")
		chunk    = flag.Int64("chunk", 500_000, "links per COPY transaction")
		replicas = flag.String("replicas", "", "comma-separated DSNs of the replicas to wait for")
		codeFile = flag.String("codes", "", "write the new links' codes here, one a line (needs SHORTFLEET_CODE_KEY)")
	)
	flag.Parse()
	if err := run(*n, *workers, *chunk, *replicas, *codeFile); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run(n int64, workers int, chunk int64, replicas, codeFile string) error {
	ctx := context.Background()
	dsn := os.Getenv("SHORTFLEET_DSN")
	if dsn == "" {
		return fmt.Errorf("SHORTFLEET_DSN is not set")
	}
	t := time.Now()
	first, last, err := seed.LinksWith(ctx, dsn, n, seed.Options{Workers: workers, Chunk: chunk})
	if err != nil {
		return err
	}
	took := time.Since(t)
	fmt.Printf("seed: %d links (ids %d..%d) in %s, %.0f links/s\n", n, first, last, took.Round(time.Millisecond), float64(n)/took.Seconds())
	if replicas != "" {
		wait, err := seed.WaitReplayed(ctx, dsn, strings.Split(replicas, ","))
		if err != nil {
			return err
		}
		fmt.Printf("seed: every replica replayed them %s later\n", wait.Round(time.Millisecond))
	}
	if codeFile != "" {
		key, err := hex.DecodeString(os.Getenv("SHORTFLEET_CODE_KEY"))
		if err != nil {
			return fmt.Errorf("SHORTFLEET_CODE_KEY: %w", err)
		}
		codec, err := codes.New(key)
		if err != nil {
			return err
		}
		if err := seed.WriteCodes(codeFile, codec, first, last); err != nil {
			return err
		}
	}
	return nil
}
