package authz

// Level is how far down the org → space → room tree an operation's object
// sits; it decides which parts of the request's scope chain are filled.
type Level int

// Levels.
const (
	LevelSys   Level = iota // system-wide: chain is (-, -, -)
	LevelOrg                // an org: (-, -, org)
	LevelSpace              // a space: (-, space, org)
	LevelRoom               // a room: (room, space, org)
)

func (l Level) String() string {
	return [...]string{"sys", "org", "space", "room"}[l]
}

// Operations. Every REST route and WebSocket op maps to exactly one of these
// (core/api and core/gateway declare which); docs/authorization.md has the
// matrix of who may do each.
const (
	// Self-service, system level, any verified subject.
	OpSelfRead     = "self.read"      // GET /v1/me, own sessions and devices
	OpSelfManage   = "self.manage"    // change own password, revoke own sessions, manage own devices
	OpUserRead     = "user.read"      // the user directory
	OpRoomListMine = "room.list_mine" // the caller's rooms
	OpOrgList      = "org.list"       // the caller's orgs
	OpSearch       = "message.search" // search (results filtered by message.read)

	// Org level.
	OpOrgCreate        = "org.create" // system level: only superadmin
	OpOrgRead          = "org.read"
	OpOrgMembersRead   = "org.members.read"
	OpOrgMembersManage = "org.members.manage"
	OpSpaceCreate      = "space.create"
	OpSpaceList        = "space.list"

	// Space level.
	OpSpaceRead      = "space.read"
	OpRoomCreate     = "room.create"
	OpRoomListPublic = "room.list_public"

	// Room level.
	OpRoomRead        = "room.read"
	OpRoomJoin        = "room.join"
	OpRoomLeave       = "room.leave"
	OpRoomUpdate      = "room.update" // topic, classification
	OpRoomMembersRead = "room.members.read"
	OpRoomInvite      = "room.invite"
	OpRoomKick        = "room.kick"
	OpMessageRead     = "message.read" // history, sync, edits, live delivery
	OpMessageSend     = "message.send"
	OpMessageEdit     = "message.edit"   // own messages
	OpMessageDelete   = "message.delete" // own messages
	OpMessageEditAny  = "message.edit_any"
	OpMessageDelAny   = "message.delete_any"
	OpMessageReact    = "message.react"
	OpRoomTyping      = "room.typing"
	OpRoomMarkRead    = "room.mark_read"
	// OpPluginFrame is a client frame to a plugin: decided in the room the
	// frame names, or system-wide for a frame naming none.
	OpPluginFrame = "plugin.frame"

	// Scoped administration: the level is that of the target scope.
	OpRolesAssign      = "roles.assign"
	OpRolesAssignments = "roles.assignments.read"

	// System administration.
	OpRolesRead      = "roles.read"
	OpRolesManage    = "roles.manage"
	OpPoliciesRead   = "policies.read"
	OpPoliciesManage = "policies.manage"
	OpUsersManage    = "admin.users"   // create, deactivate, sessions, attributes
	OpInvitesManage  = "admin.invites" // registration invites
	OpKeysManage     = "admin.keys"    // signing keys
	OpPluginsManage  = "plugins.manage"
	OpAuditRead      = "audit.read"
	OpDevicesManage  = "devices.manage" // any user's devices
)

// OpInfo describes one operation for docs, tests and the admin API.
type OpInfo struct {
	Name  string
	Level Level
	Doc   string
}

// Ops lists every operation in matrix order.
var Ops = []OpInfo{
	{OpSelfRead, LevelSys, "read own account, sessions, devices"},
	{OpSelfManage, LevelSys, "change own password, revoke own sessions and devices"},
	{OpUserRead, LevelSys, "read the user directory"},
	{OpRoomListMine, LevelSys, "list own rooms"},
	{OpOrgList, LevelSys, "list own orgs"},
	{OpSearch, LevelSys, "search messages (only rooms with message.read)"},
	{OpOrgCreate, LevelSys, "create an org"},
	{OpOrgRead, LevelOrg, "read an org"},
	{OpOrgMembersRead, LevelOrg, "list an org's members"},
	{OpOrgMembersManage, LevelOrg, "add, change or remove org members"},
	{OpSpaceCreate, LevelOrg, "create a space"},
	{OpSpaceList, LevelOrg, "list an org's spaces"},
	{OpSpaceRead, LevelSpace, "read a space"},
	{OpRoomCreate, LevelSpace, "create a room"},
	{OpRoomListPublic, LevelSpace, "list a space's public rooms"},
	{OpRoomRead, LevelRoom, "read a room"},
	{OpRoomJoin, LevelRoom, "join a room"},
	{OpRoomLeave, LevelRoom, "leave a room"},
	{OpRoomUpdate, LevelRoom, "change a room's topic or classification"},
	{OpRoomMembersRead, LevelRoom, "list a room's members"},
	{OpRoomInvite, LevelRoom, "add someone to a room"},
	{OpRoomKick, LevelRoom, "remove someone else from a room"},
	{OpMessageRead, LevelRoom, "read history, sync, receive live messages"},
	{OpMessageSend, LevelRoom, "post a message"},
	{OpMessageEdit, LevelRoom, "edit own messages"},
	{OpMessageDelete, LevelRoom, "delete own messages"},
	{OpMessageEditAny, LevelRoom, "edit others' messages"},
	{OpMessageDelAny, LevelRoom, "delete others' messages"},
	{OpMessageReact, LevelRoom, "react to messages"},
	{OpRoomTyping, LevelRoom, "send typing notices"},
	{OpRoomMarkRead, LevelRoom, "send read receipts"},
	{OpPluginFrame, LevelRoom, "send a plugin a frame about the room (a frame naming no room: any signed-in user)"},
	{OpRolesAssign, LevelRoom, "assign or remove roles in a scope (level of that scope)"},
	{OpRolesAssignments, LevelRoom, "list role assignments in a scope (level of that scope)"},
	{OpRolesRead, LevelSys, "read role definitions"},
	{OpRolesManage, LevelSys, "create or delete roles"},
	{OpPoliciesRead, LevelSys, "read policies"},
	{OpPoliciesManage, LevelSys, "add or remove policies"},
	{OpUsersManage, LevelSys, "administer accounts and their sessions and attributes"},
	{OpInvitesManage, LevelSys, "administer registration invites"},
	{OpKeysManage, LevelSys, "administer token signing keys"},
	{OpPluginsManage, LevelSys, "administer plugins"},
	{OpAuditRead, LevelSys, "read the audit log"},
	{OpDevicesManage, LevelSys, "administer any user's devices"},
}

// Built-in roles, strongest first. Each inherits the next.
const (
	RoleSuperadmin = "superadmin"
	RoleOrgadmin   = "orgadmin"
	RoleSpaceadmin = "spaceadmin"
	RoleRoomadmin  = "roomadmin" // a room's owner
	RoleMember     = "member"
	RoleGuest      = "guest"
)

// BuiltinRoles lists the hierarchy, strongest first.
var BuiltinRoles = []string{RoleSuperadmin, RoleOrgadmin, RoleSpaceadmin, RoleRoomadmin, RoleMember, RoleGuest}

// Policy is one p rule.
type Policy struct {
	Sub  string `json:"sub"`
	Dom  string `json:"dom"`
	Act  string `json:"act"`
	Eft  string `json:"eft"`
	Cond string `json:"cond,omitempty"`
}

func (p Policy) rule() []string { return []string{p.Sub, p.Dom, p.Act, p.Eft, p.Cond} }

// DefaultPolicies is what a new installation starts with: the permission
// matrix of docs/authorization.md. A grant applies where its role is held in
// a domain matching dom: "room:*" only in the room itself; "space:*" and
// "org:*" in a space or org (and so in everything below it).
//
// The superadmin administers the system, its orgs and spaces, and may assign
// any role anywhere, but does not read or join private rooms by inheritance:
// room admin powers are granted at org and space level only, so a superadmin
// who wants into a room gives themselves a role there, which is recorded.
func DefaultPolicies() []Policy {
	allow := func(sub, dom, act string) Policy { return Policy{sub, dom, act, "allow", ""} }
	ps := []Policy{
		// Any verified subject: self-service and their own listings.
		allow(RoleAuthenticated, SysDomain, OpSelfRead),
		allow(RoleAuthenticated, SysDomain, OpSelfManage),
		allow(RoleAuthenticated, SysDomain, OpUserRead),
		allow(RoleAuthenticated, SysDomain, OpRoomListMine),
		allow(RoleAuthenticated, SysDomain, OpOrgList),
		allow(RoleAuthenticated, SysDomain, OpSearch),
		// Org membership: see the org and its spaces, create and join public rooms.
		allow(RoleGuest, "org:*", OpOrgRead),
		allow(RoleGuest, "org:*", OpOrgMembersRead),
		allow(RoleGuest, "org:*", OpSpaceList),
		allow(RoleGuest, "org:*", OpSpaceRead),
		allow(RoleMember, "org:*", OpRoomCreate),
		allow(RoleMember, "org:*", OpRoomListPublic),
		{RoleMember, "org:*", OpRoomJoin, "allow", "kind=public"},
		{RoleMember, "org:*", OpRoomRead, "allow", "kind=public"},
		// Space membership: the same inside one space.
		allow(RoleGuest, "space:*", OpSpaceRead),
		allow(RoleMember, "space:*", OpRoomCreate),
		allow(RoleMember, "space:*", OpRoomListPublic),
		{RoleMember, "space:*", OpRoomJoin, "allow", "kind=public"},
		{RoleMember, "space:*", OpRoomRead, "allow", "kind=public"},
		// Room membership.
		allow(RoleGuest, "room:*", OpRoomRead),
		allow(RoleGuest, "room:*", OpRoomJoin), // already in: join is idempotent
		allow(RoleGuest, "room:*", OpRoomLeave),
		allow(RoleGuest, "room:*", OpRoomMembersRead),
		allow(RoleGuest, "room:*", OpMessageRead),
		allow(RoleGuest, "room:*", OpRoomMarkRead),
		allow(RoleMember, "room:*", OpMessageSend),
		allow(RoleMember, "room:*", OpMessageEdit),
		allow(RoleMember, "room:*", OpMessageDelete),
		allow(RoleMember, "room:*", OpMessageReact),
		allow(RoleMember, "room:*", OpRoomTyping),
		allow(RoleMember, "room:*", OpRoomInvite),
		allow(RoleRoomadmin, "room:*", OpRoomKick),
		allow(RoleRoomadmin, "room:*", OpRoomUpdate),
		allow(RoleRoomadmin, "room:*", OpMessageDelAny),
		allow(RoleRoomadmin, "room:*", OpRolesAssign),
		allow(RoleRoomadmin, "room:*", OpRolesAssignments),
	}
	// Space admins administer every room of their space, orgadmins (who
	// inherit spaceadmin) every room of their org, without joining.
	for _, op := range []string{OpRoomRead, OpRoomJoin, OpRoomMembersRead, OpRoomInvite, OpRoomKick, OpRoomUpdate,
		OpMessageRead, OpMessageDelAny, OpRolesAssign, OpRolesAssignments, OpRoomCreate, OpRoomListPublic, OpSpaceRead} {
		ps = append(ps, allow(RoleSpaceadmin, "space:*", op), allow(RoleSpaceadmin, "org:*", op))
	}
	for _, op := range []string{OpOrgMembersManage, OpSpaceCreate, OpMessageEditAny} {
		ps = append(ps, allow(RoleOrgadmin, "org:*", op))
	}
	// The superadmin: everything above room level, everywhere, and in rooms
	// only what changes who is in them (assign roles, remove people).
	for _, op := range Ops {
		if op.Level != LevelRoom || op.Name == OpRolesAssign || op.Name == OpRolesAssignments || op.Name == OpRoomKick {
			ps = append(ps, allow(RoleSuperadmin, SysDomain, op.Name))
		}
	}
	ps = append(ps, pluginFramePolicies()...)
	return append(ps, ClearanceDenies()...)
}

// ClearanceDenies are the ABAC rules: a room classified above the subject's
// clearance is closed to everyone below that clearance, whatever their role
// (every role inherits guest), for every room operation except leaving it —
// reading, writing, deleting, membership and role changes alike. Leaving
// only takes access away, so it stays open.
func ClearanceDenies() []Policy {
	var ps []Policy
	for _, op := range Ops {
		if op.Level == LevelRoom && op.Name != OpRoomLeave {
			ps = append(ps, clearanceDeny(op.Name))
		}
	}
	return ps
}

func clearanceDeny(op string) Policy {
	return Policy{RoleGuest, "*", op, "deny", "clearance<classification"}
}

// pluginFramePolicies let room members (any room role) send plugins frames
// about their room, and any signed-in subject send frames naming no room
// ("kind=" with no kind holds only when the object is not a room).
func pluginFramePolicies() []Policy {
	return []Policy{
		{RoleGuest, "room:*", OpPluginFrame, "allow", ""},
		{RoleAuthenticated, SysDomain, OpPluginFrame, "allow", "kind="},
	}
}

// seedAdditions are default rules added after the first seed: each step
// adds its rules (those not stored yet) once to a database seeded before it
// (a fresh database gets them with DefaultPolicies), so an operator's later
// removal sticks.
var seedAdditions = []struct {
	step     string
	policies func() []Policy
}{
	{"authz_seed_plugin_frame", func() []Policy { return append(pluginFramePolicies(), clearanceDeny(OpPluginFrame)) }},
}

// clearanceSeededV1 are the operations the first seeded policy closed by
// clearance; installations seeded then get the rest of ClearanceDenies once
// (ClearanceStep).
var clearanceSeededV1 = []string{OpRoomRead, OpRoomJoin, OpRoomMembersRead, OpMessageRead, OpMessageSend,
	OpMessageEdit, OpMessageReact, OpRoomTyping, OpRoomMarkRead, OpRoomInvite}

// Inheritance is the default role hierarchy as g rules in AnyDomain.
func Inheritance() [][2]string {
	out := make([][2]string, 0, len(BuiltinRoles)-1)
	for i := 0; i+1 < len(BuiltinRoles); i++ {
		out = append(out, [2]string{BuiltinRoles[i], BuiltinRoles[i+1]})
	}
	return out
}
