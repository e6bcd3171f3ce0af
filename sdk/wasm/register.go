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
	p := registered
	add := func(ok bool, name string) {
		if ok {
			d.Hooks = append(d.Hooks, name)
		}
	}
	_, ok := p.(Activator)
	add(ok, HookOnActivate)
	_, ok = p.(Deactivator)
	add(ok, HookOnDeactivate)
	_, ok = p.(ConfigurationChanger)
	add(ok, HookOnConfigurationChange)
	_, ok = p.(PostFilter)
	add(ok, HookMessageWillBePosted)
	_, ok = p.(PostObserver)
	add(ok, HookMessageHasBeenPosted)
	_, ok = p.(UpdateFilter)
	add(ok, HookMessageWillBeUpdated)
	_, ok = p.(UpdateObserver)
	add(ok, HookMessageHasBeenUpdated)
	_, ok = p.(DeleteObserver)
	add(ok, HookMessageHasBeenDeleted)
	_, ok = p.(LoginFilter)
	add(ok, HookUserWillLogIn)
	_, ok = p.(LoginObserver)
	add(ok, HookUserHasLoggedIn)
	_, ok = p.(JoinObserver)
	add(ok, HookUserHasJoinedRoom)
	_, ok = p.(LeaveObserver)
	add(ok, HookUserHasLeftRoom)
	_, ok = p.(ConnectObserver)
	add(ok, HookOnWebSocketConnect)
	_, ok = p.(DisconnectObserver)
	add(ok, HookOnWebSocketDisconnect)
	ch, ok := p.(CommandHandler)
	add(ok, HookExecuteCommand)
	if ok {
		d.Commands = ch.Commands()
	}
	_, ok = p.(Ticker)
	add(ok, HookOnTick)
	_, ok = p.(OnSecurityEventsHook)
	add(ok, HookOnSecurityEvents)
	return d
}

var errNoHook = errors.New("hook not implemented")

// dispatch runs one hook with its JSON input and returns its JSON output.
func dispatch(hook string, in []byte) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("plugin panicked in %s: %v", hook, r)
		}
	}()
	p := registered
	if p == nil {
		return nil, errors.New("no plugin registered (call unhidra.Register in init)")
	}
	decode := func(v any) error {
		if err := json.Unmarshal(in, v); err != nil {
			return fmt.Errorf("decode %s input: %w", hook, err)
		}
		return nil
	}
	switch hook {
	case HookOnActivate:
		if h, ok := p.(Activator); ok {
			return nil, h.OnActivate(in)
		}
	case HookOnDeactivate:
		if h, ok := p.(Deactivator); ok {
			return nil, h.OnDeactivate()
		}
	case HookOnConfigurationChange:
		if h, ok := p.(ConfigurationChanger); ok {
			return nil, h.OnConfigurationChange(in)
		}
	// MessageWillBePosted and MessageWillBeUpdated take the fast path in
	// call (fastFilter); here they only reach "not implemented".
	case HookMessageHasBeenPosted, HookMessageHasBeenUpdated, HookMessageHasBeenDeleted:
		var post Post
		if err := decode(&post); err != nil {
			return nil, err
		}
		if h, ok := p.(PostObserver); ok && hook == HookMessageHasBeenPosted {
			h.MessageHasBeenPosted(&post)
			return nil, nil
		}
		if h, ok := p.(UpdateObserver); ok && hook == HookMessageHasBeenUpdated {
			h.MessageHasBeenUpdated(&post)
			return nil, nil
		}
		if h, ok := p.(DeleteObserver); ok && hook == HookMessageHasBeenDeleted {
			h.MessageHasBeenDeleted(&post)
			return nil, nil
		}
	case HookUserHasJoinedRoom, HookUserHasLeftRoom:
		var m Membership
		if err := decode(&m); err != nil {
			return nil, err
		}
		if h, ok := p.(JoinObserver); ok && hook == HookUserHasJoinedRoom {
			h.UserHasJoinedRoom(&m)
			return nil, nil
		}
		if h, ok := p.(LeaveObserver); ok && hook == HookUserHasLeftRoom {
			h.UserHasLeftRoom(&m)
			return nil, nil
		}
	case HookUserWillLogIn, HookUserHasLoggedIn:
		var u UserEvent
		if err := decode(&u); err != nil {
			return nil, err
		}
		if h, ok := p.(LoginFilter); ok && hook == HookUserWillLogIn {
			return h.UserWillLogIn(&u), nil
		}
		if h, ok := p.(LoginObserver); ok && hook == HookUserHasLoggedIn {
			h.UserHasLoggedIn(&u)
			return nil, nil
		}
	case HookOnWebSocketConnect, HookOnWebSocketDisconnect:
		var c ConnectionEvent
		if err := decode(&c); err != nil {
			return nil, err
		}
		if h, ok := p.(ConnectObserver); ok && hook == HookOnWebSocketConnect {
			h.OnWebSocketConnect(&c)
			return nil, nil
		}
		if h, ok := p.(DisconnectObserver); ok && hook == HookOnWebSocketDisconnect {
			h.OnWebSocketDisconnect(&c)
			return nil, nil
		}
	case HookExecuteCommand:
		var a CommandArgs
		if err := decode(&a); err != nil {
			return nil, err
		}
		if h, ok := p.(CommandHandler); ok {
			return h.ExecuteCommand(&a)
		}
	case HookOnTick:
		var t Tick
		if err := decode(&t); err != nil {
			return nil, err
		}
		if h, ok := p.(Ticker); ok {
			return nil, h.OnTick(&t)
		}
	case HookOnSecurityEvents:
		var b SecurityEventBatch
		if err := decode(&b); err != nil {
			return nil, err
		}
		if h, ok := p.(OnSecurityEventsHook); ok {
			return nil, h.OnSecurityEvents(&b)
		}
	}
	return nil, fmt.Errorf("%s: %w", hook, errNoHook)
}

// call is the body of the unhidra_call export: run the hook and wrap the
// answer in a CallResult envelope.
func call(hook string, in []byte) []byte {
	if hook == HookMessageWillBePosted || hook == HookMessageWillBeUpdated {
		if b, ok := fastFilter(hook, in); ok {
			return b
		}
	}
	out, err := dispatch(hook, in)
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

// fastFilter runs a filter hook with the hand-written codec. ok is false
// when the plugin lacks the hook, so the general path reports it.
func fastFilter(hook string, in []byte) (out []byte, ok bool) {
	p := registered
	var d PostDecision
	var post Post
	defer func() {
		if r := recover(); r != nil {
			out, ok = errorEnvelope(fmt.Sprintf("plugin panicked in %s: %v", hook, r)), true
		}
	}()
	var filter func(*Post) PostDecision
	if h, has := p.(PostFilter); has && hook == HookMessageWillBePosted {
		filter = h.MessageWillBePosted
	} else if h, has := p.(UpdateFilter); has && hook == HookMessageWillBeUpdated {
		filter = h.MessageWillBeUpdated
	} else {
		return nil, false
	}
	if err := decodePost(in, &post); err != nil {
		return errorEnvelope("decode " + hook + " input: " + err.Error()), true
	}
	d = filter(&post)
	outBuf = appendDecision(outBuf[:0], d)
	return outBuf, true
}

func errorEnvelope(msg string) []byte {
	b, _ := json.Marshal(CallResult{Error: msg})
	return b
}
