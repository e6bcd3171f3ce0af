package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/unhidra/unhidra/core/auth"
	"github.com/unhidra/unhidra/core/server"
	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
)

// pyJWT finds a Python 3 with PyJWT and cryptography (Debian python3-jwt
// and python3-cryptography). Debian's /usr/bin/python3 comes first because
// a python3 earlier on PATH (pyenv) may lack the Debian packages.
func pyJWT(t *testing.T) string {
	t.Helper()
	cands := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		cands = append(cands, p)
	}
	for _, p := range cands {
		if exec.Command(p, "-c", "import jwt, cryptography; jwt.algorithms.OKPAlgorithm").Run() == nil {
			return p
		}
	}
	servertest.SkipOrFail(t, "the independent JWT verifier needs python3 with PyJWT and cryptography (Debian: apt install python3-jwt python3-cryptography)")
	return ""
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	tk, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	return tk.Header["kid"].(string)
}

// TestIndependentVerifierAcrossRotation is "Done when" 2: PyJWT fetches the
// JWKS and verifies tokens issued before, during and after two key
// rotations (one as `unhidra keys rotate` makes it, one by the service's
// schedule path), and refuses forged ones. It also checks the publish-ahead
// rule: a JWKS fetched before the new key signs already verifies its tokens.
func TestIndependentVerifierAcrossRotation(t *testing.T) {
	py := pyJWT(t)
	for _, alg := range []string{auth.AlgEdDSA, auth.AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			const lead = 3 * time.Second
			env := servertest.Start(t, servertest.Options{Config: func(c *server.Config) {
				c.JWTAlg, c.KeyPublishLead = alg, lead
			}})
			ctx := ctx(t)
			au := env.Server.Auth()
			env.NewUser(t, "alice")
			a := &client.API{Base: env.URL}
			login := func() client.Tokens {
				tk, err := a.Login(ctx, "alice", "password-alice")
				if err != nil {
					t.Fatal(err)
				}
				return tk
			}
			waitSigner := func(kid string) {
				deadline := time.Now().Add(20 * time.Second)
				for {
					au.ReloadKeys() // what the 30 s key check does
					if k, _ := au.SigningKey(); k == kid {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("key %s never started signing", kid)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			var valid, withCached []string
			t1 := login()
			valid = append(valid, t1.AccessToken)

			// Rotation 1, as the CLI does it: a new key file in the key dir.
			k2, err := auth.GenerateKey(filepath.Join(env.Config.DataDir, "keys"), alg, time.Now, lead)
			if err != nil {
				t.Fatal(err)
			}
			if err := au.ReloadKeys(); err != nil {
				t.Fatal(err)
			}
			// A verifier caches the JWKS now, while the old key still signs.
			resp, err := http.Get(env.URL + "/.well-known/jwks.json")
			if err != nil {
				t.Fatal(err)
			}
			cached, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if k, _ := au.SigningKey(); k == k2.Kid {
				t.Fatalf("the new key signs already, %v after it was written (lead %v)", time.Since(k2.CreatedAt), lead)
			}
			if !strings.Contains(string(cached), k2.Kid) {
				t.Fatalf("the next key is not published before it signs: %s", cached)
			}
			t2 := login()
			if kidOf(t, t2.AccessToken) != kidOf(t, t1.AccessToken) {
				t.Fatal("the next key signed before its publish lead")
			}
			valid = append(valid, t2.AccessToken)
			waitSigner(k2.Kid)
			t3 := login()
			t4, err := a.Refresh(ctx, t3.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			for _, tk := range []string{t3.AccessToken, t4.AccessToken} {
				if kidOf(t, tk) != k2.Kid {
					t.Fatalf("token after rotation signed by %s, want %s", kidOf(t, tk), k2.Kid)
				}
			}
			valid = append(valid, t3.AccessToken, t4.AccessToken)
			withCached = append(withCached, t3.AccessToken, t4.AccessToken)

			// Rotation 2, the schedule's path.
			k3, err := au.RotateKeys(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			valid = append(valid, login().AccessToken)
			waitSigner(k3.Kid)
			t5 := login()
			valid = append(valid, t5.AccessToken)
			if kidOf(t, t5.AccessToken) != k3.Kid {
				t.Fatal("second rotation did not take over")
			}

			// Forged: tampered payload, a signature moved between tokens, alg
			// none, and an HMAC token.
			p := strings.Split(t5.AccessToken, ".")
			pl, _ := base64.RawURLEncoding.DecodeString(p[1])
			pl = bytes.Replace(pl, []byte(`"preferred_username":"alice"`), []byte(`"preferred_username":"admin"`), 1)
			if !bytes.Contains(pl, []byte(`"admin"`)) {
				t.Fatalf("tampering did not change the payload: %s", pl)
			}
			none := jwt.NewWithClaims(jwt.SigningMethodNone, claimsOf(t, t5.AccessToken))
			none.Header["kid"] = k3.Kid
			noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
			hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claimsOf(t, t5.AccessToken))
			hs.Header["kid"] = k3.Kid
			hsTok, _ := hs.SignedString([]byte("guess"))
			forged := []string{
				p[0] + "." + base64.RawURLEncoding.EncodeToString(pl) + "." + p[2],
				p[0] + "." + p[1] + "." + strings.Split(t1.AccessToken, ".")[2],
				noneTok, hsTok,
			}
			job, _ := json.Marshal(map[string]any{"jwks_url": env.URL + "/.well-known/jwks.json", "issuer": "unhidra",
				"algs": []string{alg}, "cached_jwks": json.RawMessage(cached), "valid": valid,
				"valid_with_cached": withCached, "forged": forged})
			cmd := exec.Command(py, "testdata/verify_jwt.py", "verify")
			cmd.Stdin = bytes.NewReader(job)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("PyJWT verifier: %v\n%s\n%s", err, out, stderr.String())
			}
			var res struct {
				Fresh   int `json:"verified_fresh"`
				Client  int `json:"verified_client"`
				Cached  int `json:"verified_cached"`
				Refused int `json:"refused"`
			}
			json.Unmarshal(out, &res)
			if res.Fresh != len(valid) || res.Client != len(valid) || res.Cached != len(withCached) || res.Refused != len(forged) {
				t.Fatalf("PyJWT: %s; want %d verified, %d with the earlier JWKS, %d refused", out, len(valid), len(withCached), len(forged))
			}
			t.Logf("PyJWT (%s, 3 keys, 2 rotations): %d/%d tokens verified (and by PyJWKClient), %d/%d via the JWKS fetched before the key signed, %d/%d forged refused",
				alg, res.Fresh, len(valid), res.Cached, len(withCached), res.Refused, len(forged))
		})
	}
}
