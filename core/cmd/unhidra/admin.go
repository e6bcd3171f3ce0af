package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/core/store"
)

// keysCmd manages signing keys on disk. A running server re-reads the key
// directory every 30 s, publishes a new key in its JWKS at once and signs
// with it from its activation time.
func keysCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "rotate" && args[0] != "list") {
		fmt.Fprintln(stderr, "usage: unhidra keys rotate|list [--data ./data] [--keys-dir DIR] [--alg EdDSA|RS256] [--publish-lead 10m]")
		return 2
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("unhidra keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", envOr("UNHIDRA_DATA", "./data"), "data directory")
	dir := fs.String("keys-dir", os.Getenv("UNHIDRA_KEYS_DIR"), "key directory (default <data>/keys)")
	alg := fs.String("alg", envOr("UNHIDRA_JWT_ALG", auth.AlgEdDSA), "algorithm of the new key: EdDSA or RS256")
	lead := fs.Duration("publish-lead", 10*time.Minute, "how long the new key is published before it signs")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *dir == "" {
		*dir = filepath.Join(*data, "keys")
	}
	if sub == "rotate" {
		if *lead < 0 {
			fmt.Fprintf(stderr, "unhidra keys rotate: --publish-lead %v is negative\n", *lead)
			return 2
		}
		m, err := auth.GenerateKey(*dir, *alg, time.Now, *lead)
		if err != nil {
			fmt.Fprintln(stderr, "unhidra keys rotate:", err)
			return 1
		}
		fmt.Fprintf(stdout, "created %s key %s in %s; published at the server's next key check (≤30s), signs from %s\n",
			m.Alg, m.Kid, *dir, m.ActivatesAt.Format(time.RFC3339))
		return 0
	}
	ks, err := auth.LoadKeys(*dir)
	if err != nil {
		fmt.Fprintln(stderr, "unhidra keys list:", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tCREATED\tSIGNS FROM")
	for _, k := range ks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Kid, k.Alg, k.CreatedAt.Format(time.RFC3339), k.ActivatesAt.Format(time.RFC3339))
	}
	tw.Flush()
	return 0
}

// inviteCmd writes an invite straight into the database, which is how the
// first account of an invite-only server is made.
func inviteCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("unhidra invite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", envOr("UNHIDRA_DATA", "./data"), "data directory (SQLite)")
	db := fs.String("db", os.Getenv("UNHIDRA_DATABASE_URL"), "Postgres URL; empty means SQLite in --data")
	uses := fs.Int("uses", 1, "registrations the invite allows")
	expires := fs.Duration("expires", 7*24*time.Hour, "invite lifetime")
	note := fs.String("note", "", "note for admins")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Options{DSN: *db, DataDir: *data})
	if err != nil {
		fmt.Fprintln(stderr, "unhidra invite:", err)
		return 1
	}
	defer st.Close()
	inv, err := auth.CreateInvite(ctx, st, "", auth.InviteRequest{MaxUses: *uses, TTL: *expires, Note: *note}, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, "unhidra invite:", err)
		return 1
	}
	err = secevent.Write(ctx, st, secevent.Event{Type: secevent.InviteCreated, Actor: secevent.System, Target: inv.ID, TargetKind: "invite",
		Outcome: secevent.Success, Details: map[string]string{"max_uses": strconv.Itoa(inv.MaxUses),
			"expires_at": strconv.FormatInt(inv.ExpiresAt, 10), "via": "unhidra invite"}})
	if err != nil {
		fmt.Fprintln(stderr, "unhidra invite: the invite was created but its security event was not recorded:", err)
	}
	fmt.Fprintf(stdout, "invite %s (uses: %d, expires %s)\ntoken: %s\n", inv.ID, inv.MaxUses,
		time.UnixMilli(inv.ExpiresAt).UTC().Format(time.RFC3339), inv.Token)
	return 0
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
