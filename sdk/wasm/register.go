package unhidra

import (
	"encoding/json"
	"errors"
	"fmt"
)

var registered any

// Register installs the plugin. Call it once, from an init function.
func Register(p any) {
	if registered != nil {
		panic("unhidra.Register called twice")
	}
	registered = p
}

// describe lists the hooks the registered plugin implements.
func describe() Description {
	d := Description{ABI: ABIVersion, Hooks: []string{}}
	for _, e := range hookTable {
		if e.implements(registered) {
			d.Hooks = append(d.Hooks, e.name)
		}
	}
	if c, ok := registered.(CommandLister); ok {
		d.Commands = c.Commands()
	}
	return d
}

var errNoHook = errors.New("hook not implemented")

// dispatch runs one hook with its protojson input and returns its answer.
func dispatch(hook string, in []byte) (out any, verdict bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("plugin panicked in %s: %v", hook, r)
		}
	}()
	if registered == nil {
		return nil, false, errors.New("no plugin registered (call unhidra.Register in init)")
	}
	for _, e := range hookTable {
		if e.name == hook && e.implements(registered) {
			out, err = e.call(registered, in)
			return out, e.verdict, err
		}
	}
	return nil, false, fmt.Errorf("%s: %w", hook, errNoHook)
}

// call is the body of the unhidra_call export: run the hook and wrap the
// answer in a CallResult envelope.
func call(hook string, in []byte) []byte {
	if hook == HookMessageWillBePosted || hook == HookMessageWillBeUpdated {
		if b, ok := fastVerdict(hook, in); ok {
			return b
		}
	}
	out, verdict, err := dispatch(hook, in)
	var rej *Rejection
	if verdict && errors.As(err, &rej) {
		out, err = &MessageVerdict{Action: Action_ACTION_REJECT, Reason: rej.Reason}, nil
	}
	var r CallResult
	if err != nil {
		r.Error = err.Error()
	} else if out != nil {
		b, merr := json.Marshal(out)
		if merr != nil {
			r.Error = "encode " + hook + " output: " + merr.Error()
		} else {
			r.Result = b
		}
	}
	b, _ := json.Marshal(r)
	return b
}

// outBuf is reused for every fast-path answer (the host copies it out
// before the next call).
var outBuf []byte

// fastVerdict runs MessageWillBePosted or MessageWillBeUpdated with the
// hand-written codec (codec.go): they run on every message, and reflection
// is slow in a Go guest. ok is false when the plugin lacks the hook or the
// input is not what the codec reads, so that the general path answers.
func fastVerdict(hook string, in []byte) (out []byte, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			out, ok = errorEnvelope(fmt.Sprintf("plugin panicked in %s: %v", hook, r)), true
		}
	}()
	var (
		v   *MessageVerdict
		err error
	)
	switch hook {
	case HookMessageWillBePosted:
		h, has := registered.(MessageWillBePostedHook)
		box := new(struct { // one allocation for both
			req MessageWillBePostedRequest
			msg Message
		})
		if !has || decodePostedRequest(in, &box.req, &box.msg) != nil {
			return nil, false
		}
		v, err = h.MessageWillBePosted(&box.req)
	case HookMessageWillBeUpdated:
		h, has := registered.(MessageWillBeUpdatedHook)
		var req MessageWillBeUpdatedRequest
		if !has || decodeUpdatedRequest(in, &req) != nil {
			return nil, false
		}
		v, err = h.MessageWillBeUpdated(&req)
	default:
		return nil, false
	}
	var rej *Rejection
	switch {
	case errors.As(err, &rej):
		v = &MessageVerdict{Action: Action_ACTION_REJECT, Reason: rej.Reason}
	case err != nil:
		return errorEnvelope(err.Error()), true
	}
	outBuf = appendVerdictResult(outBuf[:0], v)
	return outBuf, true
}

func errorEnvelope(msg string) []byte {
	b, _ := json.Marshal(CallResult{Error: msg})
	return b
}
