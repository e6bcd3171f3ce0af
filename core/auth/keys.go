package auth

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// Signing algorithms.
const (
	AlgEdDSA = "EdDSA"
	AlgRS256 = "RS256"
)

// KeyMeta describes a signing key; it is stored next to the key as
// <kid>.json. A key is published in the JWKS as soon as it is on disk, signs
// from ActivatesAt (until a newer key activates), and is deleted once the
// last token it signed has expired.
type KeyMeta struct {
	Kid         string    `json:"kid"`
	Alg         string    `json:"alg"`
	CreatedAt   time.Time `json:"created_at"`
	ActivatesAt time.Time `json:"activates_at"`
}

// signingKey is a loaded key pair.
type signingKey struct {
	KeyMeta
	priv   crypto.Signer
	pub    crypto.PublicKey
	method jwt.SigningMethod
	path   string // the .pem file
}

func methodFor(alg string) (jwt.SigningMethod, error) {
	switch alg {
	case AlgEdDSA:
		return jwt.SigningMethodEdDSA, nil
	case AlgRS256:
		return jwt.SigningMethodRS256, nil
	}
	return nil, fmt.Errorf("signing algorithm %q: want %s or %s", alg, AlgEdDSA, AlgRS256)
}

// rsaBits is the RS256 key size (NIST: 2048 is fine until 2030; 3072 after).
const rsaBits = 3072

// GenerateKey creates a key for alg in dir that starts signing lead after
// it is written (clock is read after the key material exists: an RSA key can
// take seconds to generate). It writes <kid>.json then <kid>.pem (0600), so a
// reader that sees the .pem always sees its activation time too and a
// pending key is never mistaken for an active one.
func GenerateKey(dir, alg string, clock func() time.Time, lead time.Duration) (KeyMeta, error) {
	if _, err := methodFor(alg); err != nil {
		return KeyMeta{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return KeyMeta{}, fmt.Errorf("create key dir %s: %w", dir, err)
	}
	var (
		priv crypto.Signer
		err  error
	)
	if alg == AlgEdDSA {
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	} else {
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	}
	if err != nil {
		return KeyMeta{}, fmt.Errorf("generate %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return KeyMeta{}, err
	}
	rnd := make([]byte, 4)
	_, _ = rand.Read(rnd)
	now := clock()
	activates := now.Add(lead)
	m := KeyMeta{Kid: strings.ToLower(alg) + "-" + now.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(rnd),
		Alg: alg, CreatedAt: now.UTC(), ActivatesAt: activates.UTC()}
	mb, _ := json.MarshalIndent(m, "", "  ")
	if err := writeFileAtomic(filepath.Join(dir, m.Kid+".json"), append(mb, '\n'), 0o600); err != nil {
		return KeyMeta{}, err
	}
	if err := writeFileAtomic(filepath.Join(dir, m.Kid+".pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return KeyMeta{}, err
	}
	return m, nil
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// LoadKeys reads every key in dir, oldest activation first. A key file that
// others can read is an error: signing keys must be 0600.
func LoadKeys(dir string) ([]KeyMeta, error) {
	ks, err := loadKeys(dir)
	out := make([]KeyMeta, len(ks))
	for i, k := range ks {
		out[i] = k.KeyMeta
	}
	return out, err
}

func loadKeys(dir string) ([]*signingKey, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.pem"))
	if err != nil {
		return nil, err
	}
	var out []*signingKey
	for _, f := range files {
		k, err := loadKey(f)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	sortKeys(out)
	return out, nil
}

func sortKeys(ks []*signingKey) {
	sort.Slice(ks, func(i, j int) bool {
		if !ks[i].ActivatesAt.Equal(ks[j].ActivatesAt) {
			return ks[i].ActivatesAt.Before(ks[j].ActivatesAt)
		}
		return ks[i].Kid < ks[j].Kid
	})
}

func loadKey(path string) (*signingKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("signing key %s: permissions %04o are too open; run chmod 600 %s", path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("signing key %s: not a PEM file", path)
	}
	raw, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	k := &signingKey{path: path}
	switch p := raw.(type) {
	case ed25519.PrivateKey:
		k.priv, k.pub, k.Alg = p, p.Public(), AlgEdDSA
	case *rsa.PrivateKey:
		if p.N.BitLen() < 2048 {
			return nil, fmt.Errorf("signing key %s: RSA key has %d bits; want at least 2048", path, p.N.BitLen())
		}
		k.priv, k.pub, k.Alg = p, p.Public(), AlgRS256
	default:
		return nil, fmt.Errorf("signing key %s: %T is neither Ed25519 nor RSA", path, raw)
	}
	k.method, _ = methodFor(k.Alg)
	k.Kid = strings.TrimSuffix(filepath.Base(path), ".pem")
	k.CreatedAt, k.ActivatesAt = st.ModTime().UTC(), st.ModTime().UTC()
	mb, err := os.ReadFile(strings.TrimSuffix(path, ".pem") + ".json")
	switch {
	case err == nil:
		var m KeyMeta
		if err := json.Unmarshal(mb, &m); err != nil {
			return nil, fmt.Errorf("signing key metadata %s.json: %w", strings.TrimSuffix(path, ".pem"), err)
		}
		if m.Alg != "" && m.Alg != k.Alg {
			return nil, fmt.Errorf("signing key %s: metadata says %s but the key is %s", path, m.Alg, k.Alg)
		}
		if m.Kid != "" && m.Kid != k.Kid {
			return nil, fmt.Errorf("signing key %s: metadata kid %q does not match the file name", path, m.Kid)
		}
		k.CreatedAt, k.ActivatesAt = m.CreatedAt, m.ActivatesAt
	case errors.Is(err, os.ErrNotExist):
		// A key without metadata (e.g. copied in by an operator) is active
		// since it was written.
	default:
		return nil, fmt.Errorf("signing key metadata for %s: %w", path, err)
	}
	return k, nil
}

// keyRing is the immutable view of the keys at one moment: the signer and
// every key a still-valid token may have been signed with.
type keyRing struct {
	signer *signingKey
	verify map[string]*signingKey // kid → key
	jwks   []byte
	all    []*signingKey // oldest activation first
}

// buildRing picks the signer (the newest key of alg that has activated) and
// the keys to publish: pending keys, the signer, and retired keys whose
// tokens may still be alive. retire lists keys that are safe to delete.
func buildRing(ks []*signingKey, alg string, now time.Time, tokenTTL time.Duration) (ring *keyRing, retire []*signingKey) {
	ring = &keyRing{verify: map[string]*signingKey{}}
	for _, k := range ks {
		if k.Alg == alg && !k.ActivatesAt.After(now) {
			ring.signer = k
		}
	}
	for i, k := range ks {
		// A key stopped signing when the next activated key took over.
		var end time.Time
		for _, n := range ks[i+1:] {
			if !n.ActivatesAt.After(now) {
				end = n.ActivatesAt
				break
			}
		}
		if k != ring.signer && !end.IsZero() && now.After(end.Add(tokenTTL)) {
			retire = append(retire, k)
			continue
		}
		ring.verify[k.Kid] = k
		ring.all = append(ring.all, k)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range ring.all {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.pub, KeyID: k.Kid, Algorithm: k.Alg, Use: "sig"})
	}
	ring.jwks, _ = json.Marshal(set)
	return ring, retire
}

// removeKey deletes a key and its metadata.
func removeKey(pemPath string) error {
	if err := os.Remove(pemPath); err != nil {
		return err
	}
	_ = os.Remove(strings.TrimSuffix(pemPath, ".pem") + ".json")
	return nil
}
