// Package welcome is a first-party plugin: when someone joins a room (not
// when a room is created with them) it posts a greeting there as the
// plugin's bot, and /welcome shows the greeting to the sender. It needs the grants messages.post and users.read
// (and commands for /welcome).
//
//   - id: welcome
//     builtin: welcome
//     grants: [messages.post, users.read, commands]
//     config: {message: "Welcome, {user}!"}
package welcome

import (
	"context"
	"strings"
	"sync"

	"github.com/unhidra/unhidra/sdk/plugin"
)

// Config is the plugin's `config:`.
type Config struct {
	// Message is the greeting; {user} is replaced by the username.
	Message string `json:"message"`
}

// Plugin is the welcome plugin.
type Plugin struct {
	mu   sync.RWMutex
	cfg  Config
	host *plugin.Host
}

func init() { plugin.RegisterBuiltin("welcome", func() any { return New() }) }

// New returns the plugin with its default greeting.
func New() *Plugin { return &Plugin{cfg: Config{Message: "Welcome, {user}!"}} }

// OnActivate reads the config and registers /welcome.
func (p *Plugin) OnActivate(ctx context.Context, host *plugin.Host) error {
	p.host = host
	if err := p.OnConfigurationChange(ctx, nil); err != nil {
		return err
	}
	return host.RegisterCommand(ctx, &plugin.Command{Trigger: "welcome", Description: "Show the room greeting"})
}

// OnConfigurationChange applies a new greeting without a restart.
func (p *Plugin) OnConfigurationChange(context.Context, *plugin.ConfigurationChangeRequest) error {
	cfg := Config{Message: "Welcome, {user}!"}
	if err := p.host.Config(&cfg); err != nil {
		return err
	}
	p.mu.Lock()
	p.cfg = cfg
	p.mu.Unlock()
	return nil
}

func (p *Plugin) greeting(user string) string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return strings.ReplaceAll(p.cfg.Message, "{user}", user)
}

// UserHasJoinedRoom greets the new member in the room, except the members
// a room was created with (its creator needs no welcome to their own room).
func (p *Plugin) UserHasJoinedRoom(ctx context.Context, ev *plugin.RoomEvent) error {
	if ev.Reason == plugin.MembershipReason_MEMBERSHIP_REASON_CREATED {
		return nil
	}
	u, err := p.host.GetUser(ctx, &plugin.GetUserRequest{Id: ev.UserId})
	if err != nil {
		return err
	}
	_, err = p.host.PostMessage(ctx, &plugin.PostMessageRequest{Room: ev.Room, Text: p.greeting(u.Username)})
	return err
}

// ExecuteCommand answers /welcome with the greeting for the sender.
func (p *Plugin) ExecuteCommand(ctx context.Context, req *plugin.CommandRequest) (*plugin.CommandResponse, error) {
	u, err := p.host.GetUser(ctx, &plugin.GetUserRequest{Id: req.UserId})
	if err != nil {
		return nil, err
	}
	return &plugin.CommandResponse{Text: p.greeting(u.Username)}, nil
}
