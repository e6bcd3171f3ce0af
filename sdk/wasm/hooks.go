package unhidra

// Hook interfaces. A plugin implements any subset; Register finds out which
// and the host calls only those. Each hook runs under a deadline set in
// plugins.yaml.

// Activator runs once per instance before its first hook, with the module's
// config from plugins.yaml (also available any time through Config).
type Activator interface {
	OnActivate(config []byte) error
}

// Deactivator runs when the module is being unloaded.
type Deactivator interface {
	OnDeactivate() error
}

// ConfigurationChanger runs when plugins.yaml changed this module's config.
type ConfigurationChanger interface {
	OnConfigurationChange(config []byte) error
}

// PostFilter is MessageWillBePosted: runs before a message is committed. It
// may allow it (zero PostDecision), change it (Post set) or reject it
// (Reject set; the sender sees the reason).
type PostFilter interface {
	MessageWillBePosted(p *Post) PostDecision
}

// PostObserver is MessageHasBeenPosted: runs after commit; it cannot change
// the message.
type PostObserver interface {
	MessageHasBeenPosted(p *Post)
}

// UpdateFilter is MessageWillBeUpdated: like PostFilter for edits.
type UpdateFilter interface {
	MessageWillBeUpdated(p *Post) PostDecision
}

// UpdateObserver is MessageHasBeenUpdated.
type UpdateObserver interface {
	MessageHasBeenUpdated(p *Post)
}

// DeleteObserver is MessageHasBeenDeleted.
type DeleteObserver interface {
	MessageHasBeenDeleted(p *Post)
}

// LoginFilter is UserWillLogIn: runs before a login succeeds; a Reject
// refuses it.
type LoginFilter interface {
	UserWillLogIn(u *UserEvent) LoginDecision
}

// LoginObserver is UserHasLoggedIn.
type LoginObserver interface {
	UserHasLoggedIn(u *UserEvent)
}

// ConnectObserver is OnWebSocketConnect.
type ConnectObserver interface {
	OnWebSocketConnect(c *ConnectionEvent)
}

// DisconnectObserver is OnWebSocketDisconnect.
type DisconnectObserver interface {
	OnWebSocketDisconnect(c *ConnectionEvent)
}

// JoinObserver is UserHasJoinedRoom.
type JoinObserver interface {
	UserHasJoinedRoom(m *Membership)
}

// LeaveObserver is UserHasLeftRoom.
type LeaveObserver interface {
	UserHasLeftRoom(m *Membership)
}

// CommandHandler answers the slash commands listed by Commands.
type CommandHandler interface {
	Commands() []Command
	ExecuteCommand(a *CommandArgs) (*CommandResponse, error)
}

// Ticker is OnTick: scheduled work at the interval set in plugins.yaml.
type Ticker interface {
	OnTick(t *Tick) error
}
