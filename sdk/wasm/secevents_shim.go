package unhidra

// TEMPORARY (v2-secevents): the OnSecurityEvents hook in the shape the
// generated SDK (hooks.gen.go, types.gen.go of the v2-sdk work) declares it.
// Delete this file when that lands: the generated declarations replace it.

// HookOnSecurityEvents is the security event stream's hook.
const HookOnSecurityEvents = "OnSecurityEvents"

// SecurityEvent is one entry of the core's security event stream (the
// host sends it as protojson: 64-bit numbers are strings).
type SecurityEvent struct {
	Id         uint64            `json:"id,omitempty,string"`
	At         int64             `json:"at,omitempty,string"`
	Type       string            `json:"type,omitempty"`
	Actor      string            `json:"actor,omitempty"`
	Target     string            `json:"target,omitempty"`
	TargetKind string            `json:"target_kind,omitempty"`
	ClientAddr string            `json:"client_addr,omitempty"`
	UserAgent  string            `json:"user_agent,omitempty"`
	Outcome    string            `json:"outcome,omitempty"`
	Details    map[string]string `json:"details,omitempty"`
}

// SecurityEventBatch is what OnSecurityEvents receives.
type SecurityEventBatch struct {
	Events []*SecurityEvent `json:"events,omitempty"`
	// True when events between the plugin's cursor and this batch were
	// dropped from the bounded outbox before the plugin could read them.
	Gap bool `json:"gap,omitempty"`
}

// OnSecurityEventsHook is implemented by modules that read the security
// event stream (grant security.read). An error makes the host send the
// batch again later (deduplicate by event id).
type OnSecurityEventsHook interface {
	OnSecurityEvents(req *SecurityEventBatch) error
}
