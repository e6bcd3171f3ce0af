// Package store persists Unhidra's data with gorm: SQLite (pure Go, WAL) by
// default and Postgres when given a DSN. All message mutations go through the
// Committer (committer.go), which batches them into one transaction.
package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialects.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Options configures Open.
type Options struct {
	// DSN is a postgres:// or postgresql:// URL. Empty means SQLite in DataDir.
	DSN string
	// DataDir holds unhidra.db when DSN is empty.
	DataDir string
	// SQLiteSync is the SQLite synchronous pragma: "full" (default; an acked
	// message survives power loss) or "normal" (survives a process crash).
	SQLiteSync string
}

// Store is the database handle.
type Store struct {
	DB      *gorm.DB
	Dialect string
}

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// Open connects and runs pending migrations.
func Open(ctx context.Context, o Options) (*Store, error) {
	cfg := &gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true, PrepareStmt: true}
	var (
		db      *gorm.DB
		err     error
		dialect string
	)
	if strings.HasPrefix(o.DSN, "postgres://") || strings.HasPrefix(o.DSN, "postgresql://") {
		dialect = Postgres
		db, err = gorm.Open(postgres.Open(o.DSN), cfg)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
	} else if o.DSN != "" {
		return nil, fmt.Errorf("database URL %q: only postgres:// URLs are supported (leave it empty for SQLite)", redact(o.DSN))
	} else {
		dialect = SQLite
		if o.DataDir == "" {
			o.DataDir = "data"
		}
		if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir %s: %w", o.DataDir, err)
		}
		sync := strings.ToUpper(o.SQLiteSync)
		if sync == "" {
			sync = "FULL"
		}
		if sync != "FULL" && sync != "NORMAL" {
			return nil, fmt.Errorf("sqlite sync %q: want full or normal", o.SQLiteSync)
		}
		path := filepath.Join(o.DataDir, "unhidra.db")
		dsn := "file:" + sqliteURIPath(path) + "?_txlock=immediate&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
			"&_pragma=foreign_keys(1)&_pragma=synchronous(" + sync + ")"
		db, err = gorm.Open(sqlite.Open(dsn), cfg)
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	if dialect == SQLite {
		sqlDB.SetMaxOpenConns(8)
	} else {
		sqlDB.SetMaxOpenConns(32)
	}
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pctx); err != nil {
		return nil, fmt.Errorf("connect to %s database: %w", dialect, err)
	}
	s := &Store{DB: db, Dialect: dialect}
	if err := s.migrate(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	return s, nil
}

// sqliteURIPath escapes the characters that end or escape the path of an
// SQLite URI filename, so that a data directory named "chat#2" or "a?b"
// opens the file in that directory and not a truncated path.
func sqliteURIPath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

// redact hides a password in a URL-ish string.
func redact(dsn string) string {
	if i := strings.Index(dsn, "@"); i > 0 {
		if j := strings.Index(dsn, "://"); j > 0 && j < i {
			return dsn[:j+3] + "…@" + dsn[i+1:]
		}
	}
	return dsn
}

// Ping checks the database is reachable (for /readyz).
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.DB.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// Close closes the connection pool.
func (s *Store) Close() error {
	sqlDB, err := s.DB.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Now is the store's clock in unix milliseconds.
func Now() int64 { return time.Now().UnixMilli() }

type migration struct {
	id  string
	run func(tx *gorm.DB, dialect string) error
}

// migrations run in order, once each, recorded in the migrations table.
// Append new steps; never edit or reorder a step that has shipped.
var migrations = []migration{
	{"0001_tables", func(tx *gorm.DB, _ string) error {
		return tx.AutoMigrate(&Org{}, &Space{}, &User{}, &Room{}, &Member{}, &Message{},
			&MessageEdit{}, &Reaction{}, &Event{}, &RefreshToken{})
	}},
	{"0002_search", func(tx *gorm.DB, dialect string) error {
		var stmts []string
		if dialect == SQLite {
			stmts = []string{
				`CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(text, content='messages', content_rowid='pk', tokenize='unicode61 remove_diacritics 2')`,
				`CREATE TRIGGER IF NOT EXISTS messages_fts_ai AFTER INSERT ON messages BEGIN
				   INSERT INTO messages_fts(rowid, text) VALUES (new.pk, new.text); END`,
				`CREATE TRIGGER IF NOT EXISTS messages_fts_ad AFTER DELETE ON messages BEGIN
				   INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.pk, old.text); END`,
				`CREATE TRIGGER IF NOT EXISTS messages_fts_au AFTER UPDATE OF text ON messages BEGIN
				   INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.pk, old.text);
				   INSERT INTO messages_fts(rowid, text) VALUES (new.pk, new.text); END`,
			}
		} else {
			stmts = []string{
				`ALTER TABLE messages ADD COLUMN IF NOT EXISTS tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED`,
				`CREATE INDEX IF NOT EXISTS idx_messages_tsv ON messages USING gin(tsv)`,
			}
		}
		for _, q := range stmts {
			if err := tx.Exec(q).Error; err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	}},
	{"0003_default_tenancy", func(tx *gorm.DB, _ string) error {
		now := Now()
		if err := tx.Where(Org{ID: DefaultOrg}).FirstOrCreate(&Org{ID: DefaultOrg, Name: "Default", CreatedAt: now}).Error; err != nil {
			return err
		}
		return tx.Where(Space{ID: DefaultSpace}).FirstOrCreate(&Space{ID: DefaultSpace, OrgID: DefaultOrg, Name: "General", CreatedAt: now}).Error
	}},
	{"0004_sessions_devices_invites", func(tx *gorm.DB, _ string) error {
		return tx.AutoMigrate(&Session{}, &Device{}, &Invite{})
	}},
	{"0005_plugin_kv", func(tx *gorm.DB, _ string) error {
		return tx.AutoMigrate(&PluginKV{})
	}},
	{"0006_authz", func(tx *gorm.DB, _ string) error {
		// Policy rules, plus the ABAC attributes of users and rooms.
		return tx.AutoMigrate(&AuthzRule{}, &User{}, &Room{})
	}},
	{"0007_blocks", func(tx *gorm.DB, _ string) error {
		return tx.AutoMigrate(&Block{})
	}},
	{"0008_security_events", func(tx *gorm.DB, _ string) error {
		// The bounded outbox of security events, its id counter (one row)
		// and each plugin's cursor into it (core/secevent).
		if err := tx.AutoMigrate(&SecurityEvent{}, &SecurityEventSeq{}, &SecurityCursor{}); err != nil {
			return err
		}
		return tx.Create(&SecurityEventSeq{ID: 1}).Error
	}},
}

// The org and space every installation starts with.
const (
	DefaultOrg   = "00000000-0000-0000-0000-000000000001"
	DefaultSpace = "00000000-0000-0000-0000-000000000002"
)

func (s *Store) migrate(ctx context.Context) error {
	db := s.DB.WithContext(ctx)
	if err := db.AutoMigrate(&Migration{}); err != nil {
		return fmt.Errorf("migrate: create migrations table: %w", err)
	}
	for _, m := range migrations {
		var n int64
		if err := db.Model(&Migration{}).Where("id = ?", m.id).Count(&n).Error; err != nil {
			return fmt.Errorf("migrate %s: %w", m.id, err)
		}
		if n > 0 {
			continue
		}
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := m.run(tx, s.Dialect); err != nil {
				return err
			}
			return tx.Create(&Migration{ID: m.id, AppliedAt: Now()}).Error
		})
		if err != nil {
			return fmt.Errorf("migrate %s: %w", m.id, err)
		}
	}
	return nil
}
