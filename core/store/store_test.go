package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// A data directory whose name holds characters that mean something in an
// SQLite URI (?, #, %) gets its database file inside it, not at a
// truncated path next to it.
func TestSQLiteDataDirWithURICharacters(t *testing.T) {
	for _, name := range []string{"chat#2", "a?b", "100%25"} {
		dir := filepath.Join(t.TempDir(), name)
		st, err := Open(context.Background(), Options{DataDir: dir, SQLiteSync: "normal"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_ = st.Close()
		if _, err := os.Stat(filepath.Join(dir, "unhidra.db")); err != nil {
			t.Errorf("%s: no database in the data directory: %v", name, err)
		}
		entries, _ := os.ReadDir(filepath.Dir(dir))
		if len(entries) != 1 {
			t.Errorf("%s: the parent directory holds %d entries, want only the data directory", name, len(entries))
		}
	}
}
