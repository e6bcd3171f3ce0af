// Package authz decides every action in Unhidra with one Casbin enforcer:
// RBAC with domains for the org → space → room tree, a global role hierarchy
// (superadmin > orgadmin > spaceadmin > roomadmin > member > guest), subjects
// for users, bots, devices and plugins, and ABAC conditions (clearance versus
// classification, room kind, time-bounded grants). model.conf is the model;
// DefaultPolicies the seeded matrix; docs/authorization.md the reference.
//
// Decisions are cached per subject and invalidated on every change, so the
// send path pays a map lookup, not a Casbin evaluation. Changes persist
// through core/store and reach other nodes through a Watcher on a Bus.
package authz

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/google/uuid"

	"github.com/unhidra/unhidra/core/secevent"
	"github.com/unhidra/unhidra/core/store"
)

//go:embed model.conf
var modelText string

// ModelText returns the Casbin model (model.conf).
func ModelText() string { return modelText }

// Options configures an Enforcer.
type Options struct {
	Store *store.Store
	// Bus carries policy-change notices between nodes (default: a LocalBus
	// of its own, i.e. a single node).
	Bus Bus
	// Node names this node on the bus (default: a random id).
	Node   string
	Logger *slog.Logger
	// CacheEntries bounds the decision cache (default 1<<20 decisions).
	CacheEntries int
	// Now is the clock for time-bounded grants (default time.Now).
	Now func() time.Time
	// Events receives role, policy and clearance changes (nil: none).
	Events *secevent.Outbox
}

// Request is one decision: may Sub do Act to an object in Room/Space/Org?
// Scope ids are bare ids; leave the levels above the object empty (an org
// operation has only Org; a system operation none).
type Request struct {
	Sub              string
	Room, Space, Org string
	Act              string
	Env              Env
}

// Change tells listeners what a policy change may affect: one subject, or
// everyone (Subject == "").
type Change struct {
	Subject string
	Remote  bool // the change came from another node
	// Grant is set when the change only added access (a new membership), so
	// listeners that look for lost access may skip it.
	Grant bool
}

// Enforcer decides requests. It is safe for concurrent use.
type Enforcer struct {
	o       Options
	mu      sync.RWMutex // guards ce, rm, conds, clearance
	ce      *casbin.Enforcer
	rm      *scopedRoles
	conds   map[string]cond
	bad     map[string]error // stored conditions that do not parse
	clear   map[string]int   // subject → clearance
	cache   *decisionCache
	watcher *Watcher
	// Casbin scans every p rule per decision. To keep that scan short
	// however large the policy grows, decisions run on pooled evaluation
	// enforcers (sharing rm) whose rule list is set per request to the
	// rules that can match it: role rules of the operation (plus "*" rules)
	// and the requesting subject's own rules. Subjects are never roles
	// (CheckAssignment), so another subject's rules cannot match.
	roleRules map[string][][]string // act → role rules for act and "*"
	starRules [][]string            // role rules for "*" only
	subjRules map[string][][]string // subject → its own rules
	pool      chan *casbin.Enforcer

	lmu       sync.Mutex
	listeners []func(Change)
	timer     *time.Timer
	plugins   map[string][]string // plugin id → grants last synced
}

// ErrInvalid is wrapped by errors about bad input (unknown role, bad scope…).
var ErrInvalid = errors.New("invalid")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// SeedStep is the migrations-table id recorded once the default policy has
// been written, so that a deliberately emptied policy is not re-seeded.
const SeedStep = "authz_seed_v1"

// ClearanceStep is recorded once the clearance rule has been extended to
// every room operation (ClearanceDenies) in a policy seeded before that.
const ClearanceStep = "authz_clearance_v2"

// New loads the policy (seeding it on first start) and returns the enforcer.
func New(ctx context.Context, o Options) (*Enforcer, error) {
	if o.Store == nil {
		return nil, errors.New("authz: Store is required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Bus == nil {
		o.Bus = NewLocalBus()
	}
	if o.Node == "" {
		o.Node = uuid.NewString()
	}
	if o.CacheEntries <= 0 {
		o.CacheEntries = 1 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := seed(ctx, o.Store); err != nil {
		return nil, err
	}
	if err := extendClearance(ctx, o.Store); err != nil {
		return nil, err
	}
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("authz: model.conf: %w", err)
	}
	ce, err := casbin.NewEnforcer(m)
	if err != nil {
		return nil, fmt.Errorf("authz: %w", err)
	}
	e := &Enforcer{o: o, ce: ce, rm: newScopedRoles(), cache: newDecisionCache(o.CacheEntries / cacheShards),
		plugins: map[string][]string{}, pool: make(chan *casbin.Enforcer, 64)}
	ce.SetAdapter(&adapter{st: o.Store, timeout: 30 * time.Second})
	ce.SetRoleManager(e.rm)
	ce.AddFunction("cond", e.condFunc)
	if err := e.reloadLocked(ctx); err != nil {
		return nil, err
	}
	e.watcher = NewWatcher(o.Bus, o.Node)
	if err := ce.SetWatcher(e.watcher); err != nil {
		return nil, fmt.Errorf("authz: set watcher: %w", err)
	}
	// SetWatcher installed a callback that reloads without our lock; replace it.
	_ = e.watcher.SetUpdateCallback(func(string) { e.remoteChanged() })
	e.scheduleBoundary()
	return e, nil
}

// seed writes the default policy and the roles existing accounts need, once,
// and each later addition to the defaults once.
func seed(ctx context.Context, st *store.Store) error {
	done, err := st.MigrationDone(ctx, SeedStep)
	if err != nil {
		return err
	}
	if !done {
		if err := seedFirst(ctx, st); err != nil {
			return err
		}
	}
	for _, a := range seedAdditions {
		done, err := st.MigrationDone(ctx, a.step)
		if err != nil {
			return err
		}
		if done {
			continue
		}
		stored, err := st.AuthzRules(ctx)
		if err != nil {
			return fmt.Errorf("authz: seed %s: %w", a.step, err)
		}
		have := map[store.AuthzRule]bool{}
		for _, r := range stored {
			r.ID = 0
			have[r] = true
		}
		var rs []store.AuthzRule
		for _, p := range a.policies() {
			if r := ruleOf("p", p.rule()); !have[r] {
				rs = append(rs, r)
			}
		}
		if err := st.AddAuthzRules(ctx, rs); err != nil {
			return fmt.Errorf("authz: seed %s: %w", a.step, err)
		}
		if err := st.MarkMigration(ctx, a.step); err != nil {
			return err
		}
	}
	return nil
}

// seedFirst writes the whole default policy (additions included, which it
// marks done) and the roles existing accounts need.
func seedFirst(ctx context.Context, st *store.Store) error {
	var rs []store.AuthzRule
	for _, in := range Inheritance() {
		rs = append(rs, store.AuthzRule{Ptype: "g", V0: in[0], V1: in[1], V2: AnyDomain})
	}
	for _, p := range DefaultPolicies() {
		rs = append(rs, ruleOf("p", p.rule()))
	}
	users, err := st.ListUsersAll(ctx)
	if err != nil {
		return fmt.Errorf("authz: seed: %w", err)
	}
	for _, u := range users {
		rs = append(rs, store.AuthzRule{Ptype: "g", V0: User(u.ID), V1: RoleMember, V2: "org:" + store.DefaultOrg})
		if u.Role == RoleSuperadmin {
			rs = append(rs, store.AuthzRule{Ptype: "g", V0: User(u.ID), V1: RoleSuperadmin, V2: SysDomain})
		}
	}
	if err := st.AddAuthzRules(ctx, rs); err != nil {
		return fmt.Errorf("authz: seed: %w", err)
	}
	for _, a := range seedAdditions {
		if err := st.MarkMigration(ctx, a.step); err != nil {
			return err
		}
	}
	return st.MarkMigration(ctx, SeedStep)
}

// extendClearance adds, once, the clearance denies a policy seeded with
// the first list lacks. Rules of that first list are not re-added: an
// operator may have removed them on purpose.
func extendClearance(ctx context.Context, st *store.Store) error {
	done, err := st.MigrationDone(ctx, ClearanceStep)
	if err != nil || done {
		return err
	}
	stored, err := st.AuthzRules(ctx)
	if err != nil {
		return fmt.Errorf("authz: extend clearance rule: %w", err)
	}
	have := map[store.AuthzRule]bool{}
	for _, r := range stored {
		r.ID = 0
		have[r] = true
	}
	var add []store.AuthzRule
	for _, p := range ClearanceDenies() {
		if r := ruleOf("p", p.rule()); !slices.Contains(clearanceSeededV1, p.Act) && !have[r] {
			add = append(add, r)
		}
	}
	if err := st.AddAuthzRules(ctx, add); err != nil {
		return fmt.Errorf("authz: extend clearance rule: %w", err)
	}
	return st.MarkMigration(ctx, ClearanceStep)
}

// reloadLocked reads policy and attributes from the database. The caller
// holds e.mu for writing, or is New.
func (e *Enforcer) reloadLocked(ctx context.Context) error {
	if err := e.ce.LoadPolicy(); err != nil {
		return fmt.Errorf("authz: load policy: %w", err)
	}
	cl, err := e.o.Store.UserClearances(ctx)
	if err != nil {
		return fmt.Errorf("authz: load clearances: %w", err)
	}
	e.clear = map[string]int{}
	for id, n := range cl {
		e.clear[User(id)] = n
	}
	e.applyPluginGrantsLocked()
	e.compileLocked()
	return nil
}

// compileLocked parses every policy condition once, so that evaluation is a
// map lookup.
func (e *Enforcer) compileLocked() {
	e.conds, e.bad = map[string]cond{}, map[string]error{}
	ps, _ := e.ce.GetPolicy()
	for _, p := range ps {
		if len(p) < 5 || p[4] == "" {
			continue
		}
		if _, ok := e.conds[p[4]]; ok {
			continue
		}
		c, err := parseCond(p[4])
		if err != nil {
			e.bad[p[4]] = err
			e.o.Logger.Error("authz: stored policy has a bad condition; its allow rules never match, its deny rules always do", "policy", p, "err", err)
			continue
		}
		e.conds[p[4]] = c
	}
	e.buildIndexLocked()
}

// buildIndexLocked rebuilds the rule index used by DecideUncached.
func (e *Enforcer) buildIndexLocked() {
	ps, _ := e.ce.GetPolicy()
	byAct := map[string][][]string{}
	var star [][]string
	subj := map[string][][]string{}
	for _, p := range ps {
		switch {
		case len(p) < 5:
		case IsSubject(p[0]):
			subj[p[0]] = append(subj[p[0]], p)
		case p[2] == "*":
			star = append(star, p)
		default:
			byAct[p[2]] = append(byAct[p[2]], p)
		}
	}
	for act, rules := range byAct {
		byAct[act] = append(rules, star...)
	}
	e.roleRules, e.starRules, e.subjRules = byAct, star, subj
}

// rulesFor returns the rules that can match a request (caller holds e.mu).
func (e *Enforcer) rulesFor(sub, act string) [][]string {
	rules, ok := e.roleRules[act]
	if !ok {
		rules = e.starRules
	}
	own := e.subjRules[sub]
	if len(own) == 0 {
		return rules
	}
	out := make([][]string, len(rules), len(rules)+len(own))
	copy(out, rules)
	for _, p := range own {
		if p[2] == act || p[2] == "*" {
			out = append(out, p)
		}
	}
	return out
}

// gFunc is the matcher's g(sub, role, domain).
func (e *Enforcer) gFunc(args ...any) (any, error) {
	if len(args) != 3 {
		return false, fmt.Errorf("g: want 3 arguments, got %d", len(args))
	}
	n1, _ := args[0].(string)
	n2, _ := args[1].(string)
	d, _ := args[2].(string)
	ok, _ := e.rm.HasLink(n1, n2, d)
	return ok, nil
}

// evaluator takes a pooled evaluation enforcer (or makes one).
func (e *Enforcer) evaluator() *casbin.Enforcer {
	select {
	case ev := <-e.pool:
		return ev
	default:
	}
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		panic(err) // the same text parsed in New
	}
	ev, err := casbin.NewEnforcer(m)
	if err != nil {
		panic(err)
	}
	ev.AddFunction("cond", e.condFunc)
	// g is our own function over rm: Casbin's default one memoizes results
	// inside the cached matcher expression, which would outlive changes.
	m["g"]["g"].RM = nil
	ev.AddFunction("g", e.gFunc)
	return ev
}

func (e *Enforcer) release(ev *casbin.Enforcer) {
	ev.GetModel()["p"]["p"].Policy = nil
	select {
	case e.pool <- ev:
	default:
	}
}

// condFunc is the matcher's cond(p.cond, p.eft, r.env). A condition that
// does not parse fails closed: it holds for deny rules and not for allow
// rules (see compileLocked).
func (e *Enforcer) condFunc(args ...any) (any, error) {
	if len(args) != 3 {
		return false, fmt.Errorf("cond: want 3 arguments, got %d", len(args))
	}
	s, _ := args[0].(string)
	eft, _ := args[1].(string)
	env, _ := args[2].(*Env)
	c, ok := e.conds[s]
	if !ok || env == nil {
		return eft == "deny", nil
	}
	return c.eval(env), nil
}

// Decide answers req from the cache or, on a miss, from Casbin. Errors deny.
func (e *Enforcer) Decide(req Request) bool {
	k := cacheKey{req.Room, req.Space, req.Org, req.Act, req.Env.Kind, req.Env.Classification}
	if ok, hit := e.cache.get(req.Sub, k); hit {
		return ok
	}
	gen := e.cache.gen.Load()
	ok, err := e.DecideUncached(req)
	if err != nil {
		e.o.Logger.Error("authz: decision failed; denying", "sub", req.Sub, "act", req.Act, "err", err)
		return false
	}
	e.cache.put(req.Sub, k, ok, gen)
	return ok
}

func scope(prefix, id string) string {
	if id == "" {
		return "-"
	}
	return prefix + id
}

// DecideUncached evaluates req with Casbin, bypassing the cache.
func (e *Enforcer) DecideUncached(req Request) (bool, error) {
	if req.Sub == "" || req.Act == "" {
		return false, nil
	}
	env := req.Env
	env.now = e.o.Now()
	e.mu.RLock()
	defer e.mu.RUnlock()
	env.Clearance = e.clear[req.Sub]
	ev := e.evaluator()
	defer e.release(ev)
	ev.GetModel()["p"]["p"].Policy = e.rulesFor(req.Sub, req.Act)
	return ev.Enforce(req.Sub, scope("room:", req.Room), scope("space:", req.Space), scope("org:", req.Org), req.Act, &env)
}

// OnChange registers fn to run after every policy change, local (in the
// goroutine that made it, before the change call returns) or remote.
func (e *Enforcer) OnChange(fn func(Change)) {
	e.lmu.Lock()
	e.listeners = append(e.listeners, fn)
	e.lmu.Unlock()
}

func (e *Enforcer) changed(c Change) {
	if c.Subject != "" {
		e.cache.dropSubject(c.Subject)
	} else {
		e.cache.dropAll()
	}
	e.lmu.Lock()
	ls := slices.Clone(e.listeners)
	e.lmu.Unlock()
	for _, fn := range ls {
		fn(c)
	}
}

// remoteChanged is the watcher callback: another node changed the policy.
func (e *Enforcer) remoteChanged() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e.mu.Lock()
	err := e.reloadLocked(ctx)
	e.mu.Unlock()
	if err != nil {
		e.o.Logger.Error("authz: reload after remote change", "err", err)
	}
	e.scheduleBoundary()
	e.changed(Change{Remote: true})
}

// Reload re-reads the policy from the database (e.g. after an operator
// edited it by hand) and flushes every cached decision.
func (e *Enforcer) Reload(ctx context.Context) error {
	e.mu.Lock()
	err := e.reloadLocked(ctx)
	e.mu.Unlock()
	e.scheduleBoundary()
	e.changed(Change{})
	return err
}

// scheduleBoundary arranges a cache flush at the next instant a time-bounded
// condition changes value, so no cached decision outlives its grant.
func (e *Enforcer) scheduleBoundary() {
	now := e.o.Now()
	var next time.Time
	e.mu.RLock()
	for _, c := range e.conds {
		for _, t := range c.boundaries() {
			if t.After(now) && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
	}
	e.mu.RUnlock()
	e.lmu.Lock()
	defer e.lmu.Unlock()
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	if !next.IsZero() {
		e.timer = time.AfterFunc(next.Sub(now)+time.Millisecond, func() {
			e.scheduleBoundary()
			e.changed(Change{})
		})
	}
}

// Close stops the watcher and the boundary timer.
func (e *Enforcer) Close() {
	e.watcher.Close()
	e.lmu.Lock()
	if e.timer != nil {
		e.timer.Stop()
	}
	e.lmu.Unlock()
}

// ---- membership (room domains; persisted by the caller in members) ----

// SetRoomRole makes role the user's only role in room. The caller has
// already written the members table.
func (e *Enforcer) SetRoomRole(user, room, role string) {
	sub, dom := User(user), "room:"+room
	e.mu.Lock()
	old, _ := e.rm.GetRoles(sub, dom)
	if len(old) == 1 && old[0] == memberRole(role) {
		e.mu.Unlock()
		return
	}
	_, _ = e.ce.RemoveFilteredGroupingPolicy(0, sub, "", dom)
	_, err := e.ce.AddGroupingPolicy(sub, memberRole(role), dom)
	e.mu.Unlock()
	if err != nil {
		e.o.Logger.Error("authz: set room role", "user", user, "room", room, "err", err)
	}
	e.changed(Change{Subject: sub, Grant: len(old) == 0})
}

// RemoveRoomRoles drops the user's roles in room.
func (e *Enforcer) RemoveRoomRoles(user, room string) {
	sub := User(user)
	e.mu.Lock()
	_, _ = e.ce.RemoveFilteredGroupingPolicy(0, sub, "", "room:"+room)
	e.mu.Unlock()
	e.changed(Change{Subject: sub})
}

// ---- assignments (org, space and sys domains; persisted here) ----

// Assignment is one g rule: Subject holds Role in Scope.
type Assignment struct {
	Subject string `json:"subject"`
	Role    string `json:"role"`
	Scope   string `json:"scope"`
}

// ParseScope splits "org:<id>", "space:<id>", "room:<id>" or "sys".
func ParseScope(s string) (kind, id string, err error) {
	if s == SysDomain {
		return SysDomain, "", nil
	}
	k, id, ok := strings.Cut(s, ":")
	if !ok || id == "" || (k != "org" && k != "space" && k != "room") {
		return "", "", invalidf("scope %q: want sys, org:<id>, space:<id> or room:<id>", s)
	}
	if _, err := uuid.Parse(id); err != nil {
		return "", "", invalidf("scope %q: %q is not an id", s, id)
	}
	return k, id, nil
}

// roleLevel is the scope kind each built-in role may be assigned at ("" any
// of org, space and room). A role is never assigned above its level (an
// orgadmin of a space would be meaningless) nor superadmin outside sys.
func roleLevel(role string) []string {
	switch role {
	case RoleSuperadmin:
		return []string{SysDomain}
	case RoleOrgadmin:
		return []string{"org"}
	case RoleSpaceadmin:
		return []string{"space"}
	case RoleRoomadmin:
		return []string{"room"}
	}
	return []string{"org", "space", "room"}
}

// CheckAssignment validates an assignment without making it.
func (e *Enforcer) CheckAssignment(a Assignment) error {
	if !IsSubject(a.Subject) {
		return invalidf("subject %q: want user:<id>, bot:<id>, device:<id> or plugin:<id>", a.Subject)
	}
	kind, _, err := ParseScope(a.Scope)
	if err != nil {
		return err
	}
	if !e.RoleExists(a.Role) {
		return invalidf("role %q does not exist", a.Role)
	}
	if !slices.Contains(roleLevel(a.Role), kind) {
		return invalidf("role %s cannot be assigned at %s level (allowed: %s)", a.Role, kind, strings.Join(roleLevel(a.Role), ", "))
	}
	return nil
}

// Assign gives a subject a role in an org, space or sys scope (room scopes
// are memberships: use the chat service, which calls SetRoomRole).
func (e *Enforcer) Assign(ctx context.Context, a Assignment) error {
	if err := e.CheckAssignment(a); err != nil {
		return err
	}
	if strings.HasPrefix(a.Scope, "room:") {
		return invalidf("room roles are memberships; assign them through the room")
	}
	e.mu.Lock()
	added, err := e.ce.AddGroupingPolicy(a.Subject, a.Role, a.Scope)
	e.mu.Unlock()
	if err != nil {
		return fmt.Errorf("authz: assign %v: %w", a, err)
	}
	if added {
		e.emit(ctx, secevent.Event{Type: secevent.RoleAssigned, Target: a.Subject, TargetKind: "subject",
			Outcome: secevent.Success, Details: map[string]string{"role": a.Role, "scope": a.Scope}})
	}
	if a.Role == RoleSuperadmin && strings.HasPrefix(a.Subject, "user:") {
		_ = e.o.Store.SetUserRole(ctx, strings.TrimPrefix(a.Subject, "user:"), RoleSuperadmin)
	}
	e.changed(Change{Subject: a.Subject})
	return nil
}

// Unassign removes a role from a subject in a scope. It reports whether the
// subject held it.
func (e *Enforcer) Unassign(ctx context.Context, a Assignment) (bool, error) {
	if strings.HasPrefix(a.Scope, "room:") {
		return false, invalidf("room roles are memberships; remove them through the room")
	}
	e.mu.Lock()
	ok, err := e.ce.RemoveGroupingPolicy(a.Subject, a.Role, a.Scope)
	e.mu.Unlock()
	if err != nil {
		return false, fmt.Errorf("authz: unassign %v: %w", a, err)
	}
	if ok {
		e.emit(ctx, secevent.Event{Type: secevent.RoleRemoved, Target: a.Subject, TargetKind: "subject",
			Outcome: secevent.Success, Details: map[string]string{"role": a.Role, "scope": a.Scope}})
	}
	if ok && a.Role == RoleSuperadmin && strings.HasPrefix(a.Subject, "user:") {
		_ = e.o.Store.SetUserRole(ctx, strings.TrimPrefix(a.Subject, "user:"), RoleMember)
	}
	e.changed(Change{Subject: a.Subject})
	return ok, nil
}

// Assignments lists the assignments of subject and/or in scope (empty means
// any), sorted.
func (e *Enforcer) Assignments(subject, scope string) []Assignment {
	e.mu.RLock()
	gs, _ := e.ce.GetFilteredGroupingPolicy(0, subject, "", scope)
	e.mu.RUnlock()
	var out []Assignment
	for _, g := range gs {
		if len(g) >= 3 && g[2] != AnyDomain {
			out = append(out, Assignment{g[0], g[1], g[2]})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Scope != out[j].Scope {
			return out[i].Scope < out[j].Scope
		}
		return out[i].Subject < out[j].Subject
	})
	return out
}

// Holds reports whether subject holds role (directly or by inheritance) in
// the domain scope itself.
func (e *Enforcer) Holds(subject, role, scope string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	ok, _ := e.rm.HasLink(subject, role, scope)
	return ok
}

// MayDelegate reports whether subject may hand out (or take away) role in
// the scope chain of req: it holds that role there itself, or it is a
// superadmin (who defines roles and policies anyway). This is what stops
// escalation: nobody grants more than they have.
func (e *Enforcer) MayDelegate(subject, role string, req Request) bool {
	return e.Holds(subject, RoleSuperadmin, SysDomain) || e.HoldsInChain(subject, role, req)
}

// HoldsInChain reports whether subject holds role in any domain of the
// chain of req (room, space, org, sys).
func (e *Enforcer) HoldsInChain(subject, role string, req Request) bool {
	for _, d := range []string{scope("room:", req.Room), scope("space:", req.Space), scope("org:", req.Org), SysDomain} {
		if d != "-" && e.Holds(subject, role, d) {
			return true
		}
	}
	return false
}

// Domains lists the domains where subject holds a role directly.
func (e *Enforcer) Domains(subject string) []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	ds, _ := e.rm.GetDomains(subject)
	return ds
}

// UserCreated gives a new account its starting roles: member of the default
// org, and superadmin when the account was created as one (the first
// account of an installation).
func (e *Enforcer) UserCreated(ctx context.Context, u store.User) error {
	if err := e.Assign(ctx, Assignment{User(u.ID), RoleMember, "org:" + store.DefaultOrg}); err != nil {
		return err
	}
	if u.Role == RoleSuperadmin {
		return e.Assign(ctx, Assignment{User(u.ID), RoleSuperadmin, SysDomain})
	}
	return nil
}

// ---- roles ----

// Role is a role and the roles it inherits directly.
type Role struct {
	Name     string   `json:"name"`
	Inherits []string `json:"inherits"`
	Builtin  bool     `json:"builtin"`
}

// Roles lists every role: the built-in hierarchy and custom roles.
func (e *Enforcer) Roles() []Role {
	e.mu.RLock()
	defer e.mu.RUnlock()
	seen := map[string]bool{}
	var out []Role
	add := func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		ps, _ := e.rm.GetRoles(name)
		out = append(out, Role{Name: name, Inherits: ps, Builtin: slices.Contains(BuiltinRoles, name)})
	}
	for _, r := range BuiltinRoles {
		add(r)
	}
	var custom []string
	for r := range e.rm.parents {
		custom = append(custom, r)
	}
	sort.Strings(custom)
	for _, r := range custom {
		add(r)
	}
	return out
}

// RoleExists reports whether name is a built-in role or has been defined.
func (e *Enforcer) RoleExists(name string) bool {
	if slices.Contains(BuiltinRoles, name) {
		return true
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	_, ok := e.rm.parents[name]
	return ok
}

var roleName = func(s string) bool {
	if len(s) < 2 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// AddRole defines a custom role inheriting the given roles (at least one).
func (e *Enforcer) AddRole(ctx context.Context, r Role) error {
	if !roleName(r.Name) || r.Name == RoleAuthenticated {
		return invalidf("role name %q: want 2–64 of a-z, 0-9, _ and -", r.Name)
	}
	if slices.Contains(BuiltinRoles, r.Name) {
		return invalidf("role %s is built in", r.Name)
	}
	if len(r.Inherits) == 0 {
		return invalidf("role %s must inherit at least one role", r.Name)
	}
	for _, in := range r.Inherits {
		if in == r.Name || !e.RoleExists(in) {
			return invalidf("role %s cannot inherit %q", r.Name, in)
		}
		if in == RoleSuperadmin {
			return invalidf("no role may inherit superadmin")
		}
	}
	e.mu.Lock()
	var err error
	for _, in := range r.Inherits {
		if _, err = e.ce.AddGroupingPolicy(r.Name, in, AnyDomain); err != nil {
			break
		}
	}
	e.mu.Unlock()
	e.changed(Change{})
	if err == nil {
		e.emit(ctx, secevent.Event{Type: secevent.RoleCreated, Target: r.Name, TargetKind: "role",
			Outcome: secevent.Success, Details: map[string]string{"inherits": strings.Join(r.Inherits, ",")}})
	}
	return err
}

// RemoveRole deletes a custom role's inheritance, its policies and its
// assignments.
func (e *Enforcer) RemoveRole(ctx context.Context, name string) error {
	if slices.Contains(BuiltinRoles, name) {
		return invalidf("role %s is built in", name)
	}
	if !e.RoleExists(name) {
		return fmt.Errorf("%w: role %q does not exist", ErrNotFound, name)
	}
	e.mu.Lock()
	_, err := e.ce.RemoveFilteredGroupingPolicy(0, name)
	if err == nil {
		_, err = e.ce.RemoveFilteredGroupingPolicy(1, name)
	}
	if err == nil {
		_, err = e.ce.RemoveFilteredPolicy(0, name)
	}
	e.compileLocked()
	e.mu.Unlock()
	e.changed(Change{})
	if err == nil {
		e.emit(ctx, secevent.Event{Type: secevent.RoleDeleted, Target: name, TargetKind: "role", Outcome: secevent.Success})
	}
	return err
}

// ErrNotFound is wrapped when a role or policy to remove does not exist.
var ErrNotFound = errors.New("not found")

// ---- policies ----

// Policies lists every p rule.
func (e *Enforcer) Policies() []Policy {
	e.mu.RLock()
	ps, _ := e.ce.GetPolicy()
	e.mu.RUnlock()
	out := make([]Policy, 0, len(ps))
	for _, p := range ps {
		if len(p) >= 5 {
			out = append(out, Policy{p[0], p[1], p[2], p[3], p[4]})
		}
	}
	return out
}

func knownOp(op string) bool {
	if op == "*" || strings.HasPrefix(op, "plugin.") {
		return true
	}
	for _, o := range Ops {
		if o.Name == op {
			return true
		}
	}
	return false
}

// CheckPolicy validates a policy without adding it.
func (e *Enforcer) CheckPolicy(p Policy) error {
	if p.Sub == "" || (!IsSubject(p.Sub) && !e.RoleExists(p.Sub) && p.Sub != RoleAuthenticated) {
		return invalidf("sub %q: want a role or a subject (user:<id>, bot:<id>, device:<id>, plugin:<id>)", p.Sub)
	}
	switch p.Dom {
	case "*", SysDomain, "org:*", "space:*", "room:*":
	default:
		if _, _, err := ParseScope(p.Dom); err != nil {
			return invalidf("dom %q: want *, sys, org:*, space:*, room:* or one scope", p.Dom)
		}
	}
	if !knownOp(p.Act) {
		return invalidf("act %q is not an operation (see GET /v1/admin/policies for the list)", p.Act)
	}
	if p.Eft != "allow" && p.Eft != "deny" {
		return invalidf("eft %q: want allow or deny", p.Eft)
	}
	if _, err := parseCond(p.Cond); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// AddPolicy adds a rule; it reports false when the rule already existed.
func (e *Enforcer) AddPolicy(ctx context.Context, p Policy) (bool, error) {
	p.Cond = strings.TrimSpace(p.Cond)
	if err := e.CheckPolicy(p); err != nil {
		return false, err
	}
	e.mu.Lock()
	ok, err := e.ce.AddPolicy(p.Sub, p.Dom, p.Act, p.Eft, p.Cond)
	e.compileLocked()
	e.mu.Unlock()
	if err != nil {
		return false, fmt.Errorf("authz: add policy %v: %w", p, err)
	}
	e.scheduleBoundary()
	e.changed(Change{})
	if ok {
		e.policyEvent(ctx, secevent.PolicyAdded, p)
	}
	return ok, nil
}

// emit records a change of the policy; without an actor in ctx (a
// registration's starting roles) the system made it.
func (e *Enforcer) emit(ctx context.Context, ev secevent.Event) {
	if secevent.ActorOf(ctx) == "" {
		ev.Actor = secevent.System
	}
	e.o.Events.Emit(ctx, ev)
}

func (e *Enforcer) policyEvent(ctx context.Context, t secevent.Type, p Policy) {
	e.emit(ctx, secevent.Event{Type: t, Target: strings.Join(p.rule(), ", "), TargetKind: "policy", Outcome: secevent.Success,
		Details: map[string]string{"sub": p.Sub, "dom": p.Dom, "act": p.Act, "eft": p.Eft, "cond": p.Cond}})
}

// RemovePolicy removes a rule; it reports false when there was none.
func (e *Enforcer) RemovePolicy(ctx context.Context, p Policy) (bool, error) {
	e.mu.Lock()
	ok, err := e.ce.RemovePolicy(p.Sub, p.Dom, p.Act, p.Eft, p.Cond)
	e.compileLocked()
	e.mu.Unlock()
	if err != nil {
		return false, fmt.Errorf("authz: remove policy %v: %w", p, err)
	}
	e.scheduleBoundary()
	e.changed(Change{})
	if ok {
		e.policyEvent(ctx, secevent.PolicyRemoved, p)
	}
	return ok, nil
}

// ---- attributes ----

// SetClearance sets a user's clearance (persisted) and re-decides them.
func (e *Enforcer) SetClearance(ctx context.Context, user string, level int) error {
	if level < 0 || level > 100 {
		return invalidf("clearance %d: want 0–100", level)
	}
	if err := e.o.Store.SetUserClearance(ctx, user, level); err != nil {
		return err
	}
	e.mu.Lock()
	if level == 0 {
		delete(e.clear, User(user))
	} else {
		e.clear[User(user)] = level
	}
	e.mu.Unlock()
	_ = e.watcher.Update()
	e.changed(Change{Subject: User(user)})
	e.emit(ctx, secevent.Event{Type: secevent.ClearanceChanged, Target: user, TargetKind: "user", Outcome: secevent.Success,
		Details: map[string]string{"clearance": strconv.Itoa(level)}})
	return nil
}

// Clearance returns a subject's clearance.
func (e *Enforcer) Clearance(subject string) int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.clear[subject]
}

// ---- plugins ----

// AuthorizePlugin decides a plugin host-API call: subject plugin:<id>, act
// plugin.<capability>, system scope. The plugin's grants from plugins.yaml
// are policies (kept in memory, re-synced when they change), so operators
// can also deny a capability with a stored deny policy.
func (e *Enforcer) AuthorizePlugin(ctx context.Context, plugin, capability string, grants []string) error {
	sub := Plugin(plugin)
	e.lmu.Lock()
	same := slices.Equal(e.plugins[plugin], grants)
	if !same {
		e.plugins[plugin] = slices.Clone(grants)
	}
	e.lmu.Unlock()
	if !same {
		e.mu.Lock()
		e.applyPluginGrantsLocked()
		e.buildIndexLocked()
		e.mu.Unlock()
		e.cache.dropSubject(sub)
	}
	if !e.Decide(Request{Sub: sub, Act: "plugin." + capability}) {
		return fmt.Errorf("plugin %s may not use %q (grant it in plugins.yaml)", plugin, capability)
	}
	return nil
}

// applyPluginGrantsLocked makes the in-memory plugin.* allow rules of every
// plugin equal its last synced grants. They are not persisted (plugins.yaml
// is their source) and not announced (each node reads plugins.yaml).
func (e *Enforcer) applyPluginGrantsLocked() {
	e.lmu.Lock()
	grants := make(map[string][]string, len(e.plugins))
	for id, g := range e.plugins {
		grants[id] = g
	}
	e.lmu.Unlock()
	e.ce.EnableAutoSave(false)
	e.ce.EnableAutoNotifyWatcher(false)
	defer e.ce.EnableAutoSave(true)
	defer e.ce.EnableAutoNotifyWatcher(true)
	for id, gs := range grants {
		sub := Plugin(id)
		old, _ := e.ce.GetFilteredPolicy(0, sub, SysDomain)
		for _, p := range old {
			if len(p) >= 5 && strings.HasPrefix(p[2], "plugin.") && p[3] == "allow" && p[4] == "" && !slices.Contains(gs, strings.TrimPrefix(p[2], "plugin.")) {
				_, _ = e.ce.RemovePolicy(p[0], p[1], p[2], p[3], p[4])
			}
		}
		for _, g := range gs {
			_, _ = e.ce.AddPolicy(sub, SysDomain, "plugin."+g, "allow", "")
		}
	}
}
