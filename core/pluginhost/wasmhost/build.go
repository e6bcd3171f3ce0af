package wasmhost

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Build compiles the Go guest in srcDir into out with the standard
// toolchain (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared). It writes to a
// temporary file first so a failed build never leaves a broken .wasm.
func Build(ctx context.Context, srcDir, out string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build %s: the go command is not on PATH (ship the .wasm file instead): %w", srcDir, err)
	}
	abs, err := filepath.Abs(srcDir)
	if err != nil {
		return err
	}
	if out, err = filepath.Abs(out); err != nil { // go build runs in srcDir
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	cmd := exec.CommandContext(ctx, gobin, "build", "-buildmode=c-shared", "-trimpath", "-o", tmp, ".")
	cmd.Dir = abs
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("build %s: %w\n%s", srcDir, err, strings.TrimSpace(string(b)))
	}
	return os.Rename(tmp, out)
}

// EnsureBuilt builds out from srcDir when out is missing or older than any
// .go file (or go.mod/go.sum) under srcDir. It reports whether it built.
func EnsureBuilt(ctx context.Context, srcDir, out string) (bool, error) {
	st, err := os.Stat(out)
	if err == nil {
		newest, werr := newestSource(srcDir)
		if werr != nil {
			return false, werr
		}
		if !newest.After(st.ModTime()) {
			return false, nil
		}
	} else if !os.IsNotExist(err) {
		return false, err
	}
	return true, Build(ctx, srcDir, out)
}

func newestSource(dir string) (time.Time, error) {
	var newest time.Time
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if strings.HasSuffix(p, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum" {
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.ModTime().After(newest) {
				newest = info.ModTime()
			}
		}
		return nil
	})
	if err != nil {
		return newest, fmt.Errorf("scan %s: %w", dir, err)
	}
	return newest, nil
}
