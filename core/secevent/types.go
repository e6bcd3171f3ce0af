package secevent

// Type is an event type: a dotted name such as "login.failed". Every type
// the core emits is a constant below and is listed in Types; Emit drops any
// other (and logs it), and a test keeps docs/plugins.md's table equal to
// Types.
type Type string

// Event types.
const (
	LoginSucceeded  Type = "login.succeeded"
	LoginFailed     Type = "login.failed"
	LoginLocked     Type = "login.locked"
	TokenRefreshed  Type = "token.refreshed"
	TokenReused     Type = "token.reused"
	Logout          Type = "logout"
	SessionRevoked  Type = "session.revoked"
	DeviceRevoked   Type = "device.revoked"
	PasswordChanged Type = "password.changed"
	UserRegistered  Type = "user.registered"
	UserCreated     Type = "user.created"
	UserDeactivated Type = "user.deactivated"
	UserReactivated Type = "user.reactivated"
	InviteCreated   Type = "invite.created"
	InviteRevoked   Type = "invite.revoked"
	KeysRotated     Type = "keys.rotated"

	UserUpdated                Type = "user.updated"
	IdentityLinked             Type = "identity.linked"
	LoginSecondFactorRequired  Type = "login.second_factor_required"
	LoginSecondFactor          Type = "login.second_factor"
	LoginSecondFactorCompleted Type = "login.second_factor_completed"
	LoginCodeIssued            Type = "login.code_issued"
	LoginCodeExchanged         Type = "login.code_exchanged"

	MemberAdded   Type = "member.added"
	MemberRemoved Type = "member.removed"

	RoleAssigned     Type = "role.assigned"
	RoleRemoved      Type = "role.removed"
	RoleCreated      Type = "role.created"
	RoleDeleted      Type = "role.deleted"
	PolicyAdded      Type = "policy.added"
	PolicyRemoved    Type = "policy.removed"
	ClearanceChanged Type = "clearance.changed"

	PluginsReloaded     Type = "plugins.reloaded"
	PluginEnabled       Type = "plugin.enabled"
	PluginDisabled      Type = "plugin.disabled"
	PluginStarted       Type = "plugin.started"
	PluginStopped       Type = "plugin.stopped"
	PluginCrashed       Type = "plugin.crashed"
	PluginCrashDisabled Type = "plugin.crash_disabled"
	PluginUpgraded      Type = "plugin.upgraded"
	PluginReconfigured  Type = "plugin.reconfigured"

	RateLimitRefused Type = "ratelimit.refused"
	MessageEdited    Type = "message.edited"
	MessageDeleted   Type = "message.deleted"
)

// Outcomes.
const (
	Success = "success"
	Failure = "failure" // the attempt failed (wrong password, invalid token, bad input)
	Denied  = "denied"  // refused by policy (lockout, rate limit, a plugin, a deactivated account)
)

// Actors that are not users.
const (
	// System is the actor of what the server does on its own (a plugin
	// crash, a scheduled key rotation, a SIGHUP reload).
	System = "system"
)

// TypeInfo documents one event type: what it means, its target and the
// detail keys it carries.
type TypeInfo struct {
	Type    Type
	Target  string // the target_kind
	Details string // the detail keys, comma-separated
	Doc     string
}

// Types lists every event type the core emits, in the order docs/plugins.md
// shows them.
var Types = []TypeInfo{
	{LoginSucceeded, "user", "username, session, device, method", "a login opened a session (method: password, or the identity plugin's id)"},
	{LoginFailed, "user", "reason, username", "a login was refused: unknown account or wrong password (failure), deactivated account or a plugin's refusal (denied, with method); target and username only when the account exists"},
	{LoginLocked, "user", "reason, username, retry_after_ms", "a login was refused by lockout or address throttling, or this failure started a lockout (denied)"},
	{TokenRefreshed, "session", "user, reason", "a refresh token was rotated (success) or refused as invalid or expired (failure)"},
	{TokenReused, "session", "user", "an already used refresh token was presented: the session is revoked (denied)"},
	{Logout, "session", "user, reason", "a session ended by logout"},
	{SessionRevoked, "session", "user, reason", "a session was revoked: by its owner, an admin, a password change, a device revocation, a deactivation or refresh-token reuse (reason)"},
	{DeviceRevoked, "device", "user", "a device was revoked (its sessions follow as session.revoked)"},
	{PasswordChanged, "user", "reason", "a password change succeeded, or failed (wrong current password, too weak) or was locked out"},
	{UserRegistered, "user", "username, role, reason", "someone signed up (success), or sign-up was refused (failure: taken, invalid, closed, invite needed)"},
	{UserCreated, "user", "username, role, reason, via", "an admin or a provisioning plugin (via: plugin) created an account (success) or was refused (failure: taken, invalid)"},
	{UserDeactivated, "user", "", "an account was deactivated (its sessions follow as session.revoked)"},
	{UserReactivated, "user", "", "an account was reactivated"},
	{InviteCreated, "invite", "max_uses, expires_at, via", "an admin created a registration invite (via: `unhidra invite` when made on the command line)"},
	{InviteRevoked, "invite", "", "an admin revoked an invite"},
	{KeysRotated, "key", "kid, alg", "a new token signing key was created (by an admin or on schedule)"},
	{UserUpdated, "user", "changed", "a provisioning plugin changed an account's profile or external id (actor plugin:<id>)"},
	{IdentityLinked, "user", "issuer", "an identity plugin linked an external identity (issuer + subject) to an existing account"},
	{LoginSecondFactorRequired, "user", "method, factors", "a login passed its first factor and now waits for a second (its challenge)"},
	{LoginSecondFactor, "user", "plugin, factor, locked_for", "a factor plugin confirmed a challenge (success) or reported a failed attempt (failure; counts toward lockout)"},
	{LoginSecondFactorCompleted, "user", "method, plugin", "a confirmed challenge was exchanged for a session"},
	{LoginCodeIssued, "user", "method, second_factor", "an identity plugin issued a one-time login code for an account it authenticated"},
	{LoginCodeExchanged, "user", "method", "the console exchanged a one-time code: for a session (success), for a second-factor challenge (success, details say so) or an invalid or used code (failure)"},
	{MemberAdded, "user", "room, reason, role", "someone else put a user into a room (reason: added, created, provisioning…); room roles given by assignment are role.assigned"},
	{MemberRemoved, "user", "room, reason, role", "someone else took a user out of a room (reason: removed — a kick or a room role taken away —, org_removal, deactivated, provisioning…)"},
	{RoleAssigned, "subject", "role, scope", "a subject was given a role in a scope (org, space, sys, or a room: there the role is a membership)"},
	{RoleRemoved, "subject", "role, scope", "a subject lost a role in a scope"},
	{RoleCreated, "role", "inherits", "a custom role was defined"},
	{RoleDeleted, "role", "", "a custom role was deleted with its policies and assignments"},
	{PolicyAdded, "policy", "sub, dom, act, eft, cond", "an authorization rule was added"},
	{PolicyRemoved, "policy", "sub, dom, act, eft, cond", "an authorization rule was removed"},
	{ClearanceChanged, "user", "clearance", "a user's ABAC clearance was set"},
	{PluginsReloaded, "plugins", "started, stopped, swapped, reconfigured, error", "plugins.yaml was reloaded (admin API or SIGHUP); failure when the file was rejected"},
	{PluginEnabled, "plugin", "error", "an admin enabled a plugin (plugins.yaml edited, then reloaded)"},
	{PluginDisabled, "plugin", "error", "an admin disabled a plugin"},
	{PluginStarted, "plugin", "pid, kind, restart", "a plugin process or module started and activated"},
	{PluginStopped, "plugin", "", "a plugin was stopped (disabled, removed from plugins.yaml, or the server stopped)"},
	{PluginCrashed, "plugin", "pid, error", "a plugin process exited or failed to start; it is restarted with backoff"},
	{PluginCrashDisabled, "plugin", "crashes, error", "a plugin crashed too often and was disabled until the next reload"},
	{PluginUpgraded, "plugin", "error", "a changed program was swapped in by a reload (failure: the new one did not start; the old keeps running)"},
	{PluginReconfigured, "plugin", "error", "a plugin's config changed on reload (failure: OnConfigurationChange failed)"},
	{RateLimitRefused, "address or user", "limit, rate, retry_after_ms", "a request or frame was refused with rate_limited: limit login, registration, auth or ws_handshake per address, messages or ws_frames per user (at most one event per limit and client per second)"},
	{MessageEdited, "message", "room, seq, privileged", "a message was edited (metadata only, never text); privileged when someone else's"},
	{MessageDeleted, "message", "room, seq, privileged", "a message was deleted (metadata only)"},
}

var known = func() map[Type]bool {
	m := make(map[Type]bool, len(Types))
	for _, t := range Types {
		m[t.Type] = true
	}
	return m
}()

// Known reports whether t is in Types.
func Known(t Type) bool { return known[t] }
