package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/store"
)

func TestKeysCLI(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if rc := run([]string{"keys", "rotate", "--data", dir, "--publish-lead", "0s"}, &out, &errb); rc != 0 {
		t.Fatalf("keys rotate: %d %s", rc, errb.String())
	}
	if rc := run([]string{"keys", "rotate", "--data", dir, "--alg", "RS256"}, &out, &errb); rc != 0 {
		t.Fatalf("keys rotate RS256: %d %s", rc, errb.String())
	}
	ks, err := auth.LoadKeys(filepath.Join(dir, "keys"))
	if err != nil || len(ks) != 2 {
		t.Fatalf("keys on disk: %+v %v", ks, err)
	}
	for _, k := range ks {
		st, _ := os.Stat(filepath.Join(dir, "keys", k.Kid+".pem"))
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s written %04o", k.Kid, st.Mode().Perm())
		}
	}
	if !ks[1].ActivatesAt.After(ks[0].ActivatesAt) || ks[1].Alg != auth.AlgRS256 {
		t.Fatalf("the RS256 key should activate 10m later: %+v", ks)
	}
	out.Reset()
	if rc := run([]string{"keys", "list", "--data", dir}, &out, &errb); rc != 0 || !strings.Contains(out.String(), ks[0].Kid) || !strings.Contains(out.String(), ks[1].Kid) {
		t.Fatalf("keys list: %d %q", rc, out.String())
	}
	errb.Reset()
	if rc := run([]string{"keys", "rotate", "--data", dir, "--alg", "HS256"}, &out, &errb); rc != 1 || !strings.Contains(errb.String(), "HS256") {
		t.Fatalf("keys rotate --alg HS256: %d %q", rc, errb.String())
	}
	if rc := run([]string{"keys", "rotate", "--data", dir, "--publish-lead", "-1m"}, &out, &errb); rc != 2 {
		t.Fatalf("negative lead: %d", rc)
	}
	if rc := run([]string{"keys", "frobnicate"}, &out, &errb); rc != 2 {
		t.Fatalf("keys frobnicate: %d", rc)
	}
	if ks2, _ := auth.LoadKeys(filepath.Join(dir, "keys")); len(ks2) != 2 {
		t.Fatalf("failed commands changed the key dir: %d keys", len(ks2))
	}
}

func TestInviteCLI(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if rc := run([]string{"invite", "--data", dir, "--uses", "3", "--note", "bootstrap"}, &out, &errb); rc != 0 {
		t.Fatalf("invite: %d %s", rc, errb.String())
	}
	if !strings.Contains(out.String(), "token: inv_") || !strings.Contains(out.String(), "uses: 3") {
		t.Fatalf("invite output: %q", out.String())
	}
	// The invite is a security event, though no server runs.
	st, err := store.Open(context.Background(), store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := st.SecurityEvents(context.Background(), store.SecurityQuery{Limit: 10})
	st.Close()
	if err != nil || len(evs) != 1 || evs[0].Type != "invite.created" || evs[0].Actor != "system" || !strings.Contains(out.String(), evs[0].Target) {
		t.Fatalf("security events after `unhidra invite`: %+v, %v", evs, err)
	}
	errb.Reset()
	if rc := run([]string{"invite", "--data", dir, "--uses", "-1"}, &out, &errb); rc != 1 || !strings.Contains(errb.String(), "max_uses") {
		t.Fatalf("invite --uses -1: %d %q", rc, errb.String())
	}
}
