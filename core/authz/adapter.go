package authz

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"

	"github.com/unhidra/unhidra/core/store"
)

// adapter persists the policy through core/store (gorm, SQLite or Postgres).
// p rules and g rules of org, space and sys domains live in authz_rules;
// room-domain g rules are room memberships and live in the members table,
// which the chat service writes in its own transactions, so the adapter only
// reads them.
type adapter struct {
	st      *store.Store
	timeout time.Duration
}

var _ persist.Adapter = (*adapter)(nil)

// MemberRole maps the members table's role column to a role name ("owner"
// is roomadmin, "" member).
func MemberRole(r string) string { return memberRole(r) }

func memberRole(r string) string {
	switch r {
	case "owner", "":
		if r == "owner" {
			return RoleRoomadmin
		}
		return RoleMember
	}
	return r
}

// isMembership reports whether a g rule is a room membership.
func isMembership(ptype string, rule []string) bool {
	return ptype == "g" && len(rule) >= 3 && strings.HasPrefix(rule[2], "room:")
}

func (a *adapter) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), a.timeout)
}

func ruleOf(ptype string, rule []string) store.AuthzRule {
	r := store.AuthzRule{Ptype: ptype}
	vs := []*string{&r.V0, &r.V1, &r.V2, &r.V3, &r.V4, &r.V5}
	for i, v := range rule {
		if i < len(vs) {
			*vs[i] = v
		}
	}
	return r
}

func (a *adapter) LoadPolicy(m model.Model) error {
	ctx, cancel := a.ctx()
	defer cancel()
	rules, err := a.st.AuthzRules(ctx)
	if err != nil {
		return fmt.Errorf("authz: load rules: %w", err)
	}
	for _, r := range rules {
		var line []string
		switch r.Ptype {
		case "p":
			line = []string{"p", r.V0, r.V1, r.V2, r.V3, r.V4}
		case "g":
			line = []string{"g", r.V0, r.V1, r.V2}
		default:
			return fmt.Errorf("authz: rule %d has unknown ptype %q", r.ID, r.Ptype)
		}
		if err := persist.LoadPolicyArray(line, m); err != nil {
			return fmt.Errorf("authz: load rule %d %v: %w", r.ID, line, err)
		}
	}
	ms, err := a.st.AllMembers(ctx)
	if err != nil {
		return fmt.Errorf("authz: load memberships: %w", err)
	}
	for _, mb := range ms {
		if err := persist.LoadPolicyArray([]string{"g", User(mb.UserID), memberRole(mb.Role), "room:" + mb.RoomID}, m); err != nil {
			return fmt.Errorf("authz: load membership %s/%s: %w", mb.RoomID, mb.UserID, err)
		}
	}
	return nil
}

func (a *adapter) SavePolicy(m model.Model) error {
	var rs []store.AuthzRule
	for _, sec := range []string{"p", "g"} {
		for ptype, ast := range m[sec] {
			for _, rule := range ast.Policy {
				if !isMembership(ptype, rule) {
					rs = append(rs, ruleOf(ptype, rule))
				}
			}
		}
	}
	ctx, cancel := a.ctx()
	defer cancel()
	return a.st.ReplaceAuthzRules(ctx, rs)
}

func (a *adapter) AddPolicy(sec, ptype string, rule []string) error {
	if isMembership(ptype, rule) {
		return nil
	}
	ctx, cancel := a.ctx()
	defer cancel()
	return a.st.AddAuthzRules(ctx, []store.AuthzRule{ruleOf(ptype, rule)})
}

func (a *adapter) RemovePolicy(sec, ptype string, rule []string) error {
	if isMembership(ptype, rule) {
		return nil
	}
	ctx, cancel := a.ctx()
	defer cancel()
	_, err := a.st.RemoveAuthzRule(ctx, ruleOf(ptype, rule))
	return err
}

func (a *adapter) RemoveFilteredPolicy(sec, ptype string, fieldIndex int, fieldValues ...string) error {
	if ptype == "g" && fieldIndex+len(fieldValues) > 2 && strings.HasPrefix(fieldValues[2-fieldIndex], "room:") {
		return nil
	}
	ctx, cancel := a.ctx()
	defer cancel()
	return a.st.RemoveAuthzRulesFiltered(ctx, ptype, fieldIndex, fieldValues...)
}
