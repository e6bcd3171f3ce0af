package pluginhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/unhidra/unhidra/core/secevent"
)

// ErrUnknownPlugin is returned by SetEnabled for an id plugins.yaml lacks.
var ErrUnknownPlugin = errors.New("no such plugin in plugins.yaml")

// SetEnabled turns one plugin on or off the way an operator would: it sets
// `enabled:` on that plugin's entry in plugins.yaml, then reloads, so the
// file stays the one source of truth and the change survives a restart.
// Comments and key order are kept; the layout is re-encoded with two-space
// indents. The edited file must validate before it replaces the old one
// (atomically, same permissions); if the reload then fails, the old file is
// put back. No WebSocket session is touched.
func (h *Host) SetEnabled(ctx context.Context, id string, on bool) (ReloadResult, error) {
	res, err := h.setEnabled(ctx, id, on)
	ev := secevent.Event{Type: secevent.PluginDisabled, Target: id, TargetKind: "plugin", Outcome: secevent.Success}
	if on {
		ev.Type = secevent.PluginEnabled
	}
	if err != nil {
		ev.Outcome, ev.Details = secevent.Failure, map[string]string{"error": err.Error()}
	}
	h.emit(ctx, ev)
	return res, err
}

func (h *Host) setEnabled(ctx context.Context, id string, on bool) (ReloadResult, error) {
	if h.o.Path == "" {
		return ReloadResult{}, errors.New("no plugins file configured (--plugins)")
	}
	h.editMu.Lock()
	defer h.editMu.Unlock()
	old, err := os.ReadFile(h.o.Path)
	if err != nil {
		return ReloadResult{}, fmt.Errorf("read plugins file: %w", err)
	}
	info, err := os.Stat(h.o.Path)
	if err != nil {
		return ReloadResult{}, fmt.Errorf("stat plugins file: %w", err)
	}
	edited, err := setEnabled(old, id, on)
	if err != nil {
		return ReloadResult{}, fmt.Errorf("%s: %w", h.o.Path, err)
	}
	if _, err := Parse(h.o.Path, edited); err != nil {
		return ReloadResult{}, err
	}
	if err := replaceFile(h.o.Path, edited, info.Mode().Perm()); err != nil {
		return ReloadResult{}, err
	}
	res, err := h.reload(ctx)
	if err != nil {
		if rerr := replaceFile(h.o.Path, old, info.Mode().Perm()); rerr != nil {
			return res, fmt.Errorf("%w (and restoring the previous file failed: %v)", err, rerr)
		}
		return res, err
	}
	return res, nil
}

// setEnabled returns data with `enabled: on` set on the plugin entry id.
func setEnabled(data []byte, id string, on bool) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: %q", ErrUnknownPlugin, id)
	}
	list := value(doc.Content[0], "plugins")
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%w: %q", ErrUnknownPlugin, id)
	}
	val := "false"
	if on {
		val = "true"
	}
	for _, item := range list.Content {
		if item.Kind != yaml.MappingNode {
			continue
		}
		if n := value(item, "id"); n == nil || n.Value != id {
			continue
		}
		if n := value(item, "enabled"); n != nil {
			n.Kind, n.Tag, n.Value, n.Style = yaml.ScalarNode, "!!bool", val, 0
		} else {
			item.Content = append(item.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "enabled"},
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: val})
		}
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(&doc); err != nil {
			return nil, err
		}
		if err := enc.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownPlugin, id)
}

// value returns the value node of key in mapping m, or nil.
func value(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// replaceFile writes data next to path and renames it over path, so readers
// see the old file or the new one, never half of one.
func replaceFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write plugins file: %w", err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), perm)
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write plugins file: %w", werr)
	}
	return nil
}
