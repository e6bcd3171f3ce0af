// Command wordfilter is a WASM plugin that rejects or masks messages
// containing words listed in its config:
//
//	config: {words: [darn, heck], mode: reject}   # or mode: mask
package main

import (
	"strings"
	"unicode"

	unhidra "github.com/unhidra/unhidra/sdk/wasm"
)

type config struct {
	Words []string `json:"words"`
	Mode  string   `json:"mode"` // reject (default) or mask
}

type filter struct {
	words map[string]bool
	mask  bool
}

func (f *filter) OnActivate(*unhidra.ActivateRequest) error { return f.load() }

func (f *filter) load() error {
	var c config
	if err := unhidra.DecodeConfig(&c); err != nil {
		return err
	}
	f.words = map[string]bool{}
	for _, w := range c.Words {
		f.words[strings.ToLower(w)] = true
	}
	f.mask = c.Mode == "mask"
	return nil
}

func (f *filter) MessageWillBePosted(req *unhidra.MessageWillBePostedRequest) (*unhidra.MessageVerdict, error) {
	if f.words == nil {
		_ = f.load()
	}
	text := []rune(req.Message.GetText())
	hit := false
	// Walk words (runs of letters/digits) and compare lower-cased.
	for i := 0; i < len(text); {
		if !isWord(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isWord(text[j]) {
			j++
		}
		if f.words[strings.ToLower(string(text[i:j]))] {
			hit = true
			if !f.mask {
				return nil, unhidra.Reject("message contains a blocked word")
			}
			for k := i; k < j; k++ {
				text[k] = '*'
			}
		}
		i = j
	}
	if !hit {
		return unhidra.Allow(), nil
	}
	return unhidra.Modify(string(text)), nil
}

func isWord(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func init() { unhidra.Register(&filter{}) }

func main() {}
