package authz

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/unhidra/unhidra/core/store"
)

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir(), SQLiteSync: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func newEnforcer(t testing.TB, st *store.Store, o Options) *Enforcer {
	t.Helper()
	o.Store = st
	e, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func id() string { return uuid.NewString() }

func TestHierarchyAndScopes(t *testing.T) {
	ctx := context.Background()
	e := newEnforcer(t, openStore(t), Options{})
	orgA, orgB, spA, spB, roomA, roomA2, roomB := id(), id(), id(), id(), id(), id(), id()
	alice, bob, carol, dave, erin := id(), id(), id(), id(), id()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.Assign(ctx, Assignment{User(alice), RoleOrgadmin, "org:" + orgA}))
	must(e.Assign(ctx, Assignment{User(bob), RoleSpaceadmin, "space:" + spA}))
	must(e.Assign(ctx, Assignment{User(carol), RoleMember, "org:" + orgA}))
	e.SetRoomRole(carol, roomA, "member")
	must(e.Assign(ctx, Assignment{User(dave), RoleSuperadmin, SysDomain}))
	must(e.Assign(ctx, Assignment{User(erin), RoleMember, "org:" + orgB}))
	e.SetRoomRole(erin, roomB, "owner")

	inA := func(room string) Request { return Request{Room: room, Space: spA, Org: orgA} }
	inB := Request{Room: roomB, Space: spB, Org: orgB}
	cases := []struct {
		who  string
		act  string
		at   Request
		kind string
		want bool
	}{
		{alice, OpMessageRead, inA(roomA), "private", true},   // orgadmin inherits spaceadmin read
		{alice, OpMessageSend, inA(roomA), "private", false},  // but is not a member
		{alice, OpMessageRead, inB, "private", false},         // other org
		{alice, OpSpaceCreate, Request{Org: orgA}, "", true},  // org level
		{alice, OpSpaceCreate, Request{Org: orgB}, "", false}, // other org
		{bob, OpRoomKick, inA(roomA), "private", true},
		{bob, OpSpaceCreate, Request{Org: orgA}, "", false},
		{bob, OpRoomKick, Request{Room: roomB, Space: spB, Org: orgA}, "private", false}, // another space
		{carol, OpMessageSend, inA(roomA), "private", true},
		{carol, OpMessageSend, inA(roomA2), "private", false},
		{carol, OpRoomJoin, inA(roomA2), "public", true},
		{carol, OpRoomJoin, inA(roomA2), "private", false},
		{carol, OpRoomKick, inA(roomA), "private", false},
		{carol, OpRoomJoin, inB, "public", false},
		{dave, OpMessageSend, inB, "private", false}, // superadmin does not post unasked
		{dave, OpMessageRead, inB, "private", false}, // nor read private rooms
		{dave, OpSpaceCreate, Request{Org: orgB}, "", true},
		{dave, OpRolesAssign, inB, "private", true}, // but may give themselves a role
		{dave, OpPoliciesManage, Request{}, "", true},
		{carol, OpPoliciesManage, Request{}, "", false},
		{carol, OpSelfRead, Request{}, "", true}, // authenticated
		{erin, OpRoomKick, inB, "private", true}, // room owner
		{erin, OpMessageDelAny, inB, "private", true},
		{erin, OpRoomUpdate, inB, "private", true},
		{erin, OpMessageRead, inA(roomA), "public", false},
	}
	for _, c := range cases {
		r := c.at
		r.Sub, r.Act, r.Env.Kind = User(c.who), c.act, c.kind
		if got := e.Decide(r); got != c.want {
			t.Errorf("%s %s at %+v: got %v want %v", c.who[:4], c.act, c.at, got, c.want)
		}
		if got, err := e.DecideUncached(r); err != nil || got != c.want {
			t.Errorf("uncached %s %s: got %v, %v", c.who[:4], c.act, got, err)
		}
	}
}

func TestClearanceAndTimeBoundedGrant(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	var now atomic.Pointer[time.Time]
	t0 := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	now.Store(&t0)
	e := newEnforcer(t, st, Options{Now: func() time.Time { return *now.Load() }})
	org, sp, room := id(), id(), id()
	u := store.User{ID: id(), Username: "u" + id()[:8], PasswordHash: "x", CreatedAt: 1}
	if err := st.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	e.SetRoomRole(u.ID, room, "member")
	req := Request{Sub: User(u.ID), Room: room, Space: sp, Org: org, Act: OpMessageRead, Env: Env{Kind: "private", Classification: 2}}
	if e.Decide(req) {
		t.Fatal("clearance 0 reads a room classified 2")
	}
	if err := e.SetClearance(ctx, u.ID, 2); err != nil {
		t.Fatal(err)
	}
	if !e.Decide(req) {
		t.Fatal("clearance 2 cannot read a room classified 2")
	}
	// A time-bounded direct grant: guest-like read of another room until t0+1h.
	other := id()
	until := t0.Add(time.Hour).Format(time.RFC3339)
	if _, err := e.AddPolicy(ctx, Policy{User(u.ID), "room:" + other, OpMessageRead, "allow", "until=" + until}); err != nil {
		t.Fatal(err)
	}
	r2 := Request{Sub: User(u.ID), Room: other, Space: sp, Org: org, Act: OpMessageRead}
	if !e.Decide(r2) {
		t.Fatal("time-bounded grant not in force")
	}
	later := t0.Add(2 * time.Hour)
	now.Store(&later)
	e.Reload(ctx) // what the boundary timer does when the grant expires
	if e.Decide(r2) {
		t.Fatal("expired grant still allows")
	}
	// Bad conditions are refused and change nothing.
	n := len(e.Policies())
	for _, bad := range []Policy{
		{User(u.ID), "room:" + other, OpMessageRead, "allow", "until=tomorrow"},
		{User(u.ID), "room:" + other, OpMessageRead, "maybe", ""},
		{User(u.ID), "room:nope", OpMessageRead, "allow", ""},
		{"nobody-role", "*", OpMessageRead, "allow", ""},
		{User(u.ID), "*", "message.fly", "allow", ""},
		{User(u.ID), "*", OpMessageRead, "allow", "clearance>9000"},
	} {
		if _, err := e.AddPolicy(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddPolicy(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	if len(e.Policies()) != n {
		t.Fatal("a refused policy changed the policy")
	}
}

func TestWatcherPropagatesAcrossNodes(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	bus := NewLocalBus()
	a := newEnforcer(t, st, Options{Bus: bus, Node: "a"})
	b := newEnforcer(t, st, Options{Bus: bus, Node: "b"})
	org, user := id(), id()
	req := Request{Sub: User(user), Org: org, Act: OpSpaceCreate}
	if b.Decide(req) {
		t.Fatal("allowed before the grant")
	}
	var changes atomic.Int32
	b.OnChange(func(c Change) {
		if c.Remote {
			changes.Add(1)
		}
	})
	if err := a.Assign(ctx, Assignment{User(user), RoleOrgadmin, "org:" + org}); err != nil {
		t.Fatal(err)
	}
	if !b.Decide(req) || changes.Load() == 0 {
		t.Fatal("node b did not learn of node a's grant")
	}
	if _, err := a.Unassign(ctx, Assignment{User(user), RoleOrgadmin, "org:" + org}); err != nil {
		t.Fatal(err)
	}
	if b.Decide(req) {
		t.Fatal("node b kept a revoked grant (stale cache)")
	}
	// And a fresh node reads the same state from the database.
	c := newEnforcer(t, st, Options{Bus: NewLocalBus()})
	if c.Decide(req) {
		t.Fatal("revocation not persisted")
	}
}

func TestAssignmentValidation(t *testing.T) {
	ctx := context.Background()
	e := newEnforcer(t, openStore(t), Options{})
	org := "org:" + id()
	for _, a := range []Assignment{
		{User(id()), RoleSuperadmin, org},
		{User(id()), RoleOrgadmin, SysDomain},
		{User(id()), RoleOrgadmin, "space:" + id()},
		{"alice", RoleMember, org},
		{User(id()), "emperor", org},
		{User(id()), RoleMember, "org:not-an-id"},
		{User(id()), RoleMember, "galaxy:" + id()},
	} {
		if err := e.Assign(ctx, a); !errors.Is(err, ErrInvalid) {
			t.Errorf("Assign(%+v) = %v, want ErrInvalid", a, err)
		}
	}
	if got := e.Assignments("", org); len(got) != 0 {
		t.Fatalf("refused assignments left %v", got)
	}
	if err := e.AddRole(ctx, Role{Name: "moderator", Inherits: []string{RoleMember}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.AddPolicy(ctx, Policy{"moderator", "room:*", OpMessageDelAny, "allow", ""}); err != nil {
		t.Fatal(err)
	}
	u, room := id(), id()
	e.SetRoomRole(u, room, "moderator")
	if !e.Decide(Request{Sub: User(u), Room: room, Space: id(), Org: id(), Act: OpMessageDelAny}) {
		t.Fatal("custom role's policy not applied")
	}
	if !e.Decide(Request{Sub: User(u), Room: room, Space: id(), Org: id(), Act: OpMessageSend}) {
		t.Fatal("custom role does not inherit member")
	}
	if err := e.RemoveRole(ctx, "moderator"); err != nil {
		t.Fatal(err)
	}
	if e.RoleExists("moderator") {
		t.Fatal("role still exists")
	}
	if err := e.RemoveRole(ctx, RoleMember); !errors.Is(err, ErrInvalid) {
		t.Fatal("removed a built-in role")
	}
}

func TestAuthorizePlugin(t *testing.T) {
	ctx := context.Background()
	e := newEnforcer(t, openStore(t), Options{})
	if err := e.AuthorizePlugin(ctx, "audit", "kv", []string{"kv", "read_users"}); err != nil {
		t.Fatal(err)
	}
	if err := e.AuthorizePlugin(ctx, "audit", "post", []string{"kv", "read_users"}); err == nil {
		t.Fatal("ungranted capability allowed")
	}
	// Grants shrink: the old capability goes at once.
	if err := e.AuthorizePlugin(ctx, "audit", "kv", []string{"read_users"}); err == nil {
		t.Fatal("revoked grant still allowed")
	}
	// An operator's stored deny beats plugins.yaml.
	if _, err := e.AddPolicy(ctx, Policy{Plugin("audit"), SysDomain, "plugin.read_users", "deny", ""}); err != nil {
		t.Fatal(err)
	}
	if err := e.AuthorizePlugin(ctx, "audit", "read_users", []string{"read_users"}); err == nil {
		t.Fatal("deny policy ignored")
	}
}

func TestSeedIsOnce(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	e := newEnforcer(t, st, Options{})
	n := len(e.Policies())
	if n != len(DefaultPolicies()) {
		t.Fatalf("seeded %d policies, want %d", n, len(DefaultPolicies()))
	}
	if _, err := e.RemovePolicy(ctx, DefaultPolicies()[1]); err != nil {
		t.Fatal(err)
	}
	e2 := newEnforcer(t, st, Options{})
	if len(e2.Policies()) != n-1 {
		t.Fatal("restart re-seeded a policy an admin removed")
	}
}

// benchOps are the operations the benchmark requests, in turn.
var benchOps = []string{OpMessageSend, OpMessageRead, OpRoomJoin, OpRoomKick, OpMessageReact, OpRoomTyping,
	OpRoomInvite, OpMessageDelAny, OpSpaceCreate, OpRoomCreate}

// bigPolicy builds an enforcer with n rules: role assignments and room
// memberships across 50 orgs (what grows in production) plus n/10 direct
// time-bounded per-room grants (p rules with a condition) spread over the
// benchmarked operations, on top of the seeded matrix.
func bigPolicy(b *testing.B, n int) (*Enforcer, []Request) {
	ctx := context.Background()
	st := openStore(b)
	e := newEnforcer(b, st, Options{})
	var rs []store.AuthzRule
	var ms []store.Member
	var reqs []Request
	orgs := make([]string, 50)
	for i := range orgs {
		orgs[i] = id()
	}
	pRules := n / 10
	for i := 0; i < n; i++ {
		u, room, org := id(), id(), orgs[i%len(orgs)]
		switch {
		case i < pRules:
			rs = append(rs, store.AuthzRule{Ptype: "p", V0: User(u), V1: "room:" + room, V2: benchOps[i%len(benchOps)], V3: "allow",
				V4: "until=2100-01-01T00:00:00Z"})
		case i%2 == 0:
			rs = append(rs, store.AuthzRule{Ptype: "g", V0: User(u), V1: RoleMember, V2: "org:" + org})
		default:
			ms = append(ms, store.Member{RoomID: room, UserID: u, Role: "member", JoinedAt: 1})
		}
		reqs = append(reqs, Request{Sub: User(u), Room: room, Space: id(), Org: org, Act: benchOps[i%len(benchOps)], Env: Env{Kind: "private"}})
	}
	if err := st.AddAuthzRules(ctx, rs); err != nil {
		b.Fatal(err)
	}
	if err := st.DB.CreateInBatches(ms, 500).Error; err != nil {
		b.Fatal(err)
	}
	if err := e.Reload(ctx); err != nil {
		b.Fatal(err)
	}
	return e, reqs
}

func benchDecide(b *testing.B, cached bool) {
	e, reqs := bigPolicy(b, 10_000)
	if cached {
		for _, r := range reqs {
			e.Decide(r)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := reqs[i%len(reqs)]
		t0 := time.Now()
		if cached {
			e.Decide(r)
		} else if _, err := e.DecideUncached(r); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	}
}

// BenchmarkDecideCached10k: a warm cache at 10k rules (the send path).
func BenchmarkDecideCached10k(b *testing.B) { benchDecide(b, true) }

// BenchmarkDecideUncached10k: a Casbin evaluation at 10k rules.
func BenchmarkDecideUncached10k(b *testing.B) { benchDecide(b, false) }

func BenchmarkDecideCachedParallel10k(b *testing.B) {
	e, reqs := bigPolicy(b, 10_000)
	for _, r := range reqs {
		e.Decide(r)
	}
	var i atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e.Decide(reqs[int(i.Add(1))%len(reqs)])
		}
	})
}

func Example_model() {
	fmt.Println(len(ModelText()) > 0)
	// Output: true
}

// BenchmarkDecideUncachedWorstCase10k: 10k role rules all naming the
// requested operation, which the rule index cannot narrow (Casbin scans
// them all). Not a realistic policy; it bounds what a pathological one costs.
func BenchmarkDecideUncachedWorstCase10k(b *testing.B) {
	ctx := context.Background()
	st := openStore(b)
	e := newEnforcer(b, st, Options{})
	var rs []store.AuthzRule
	for i := 0; i < 10_000; i++ {
		role := fmt.Sprintf("r%d", i)
		rs = append(rs, store.AuthzRule{Ptype: "g", V0: role, V1: RoleGuest, V2: AnyDomain},
			store.AuthzRule{Ptype: "p", V0: role, V1: "room:*", V2: OpMessageSend, V3: "allow"})
	}
	if err := st.AddAuthzRules(ctx, rs); err != nil {
		b.Fatal(err)
	}
	if err := e.Reload(ctx); err != nil {
		b.Fatal(err)
	}
	req := Request{Sub: User(id()), Room: id(), Space: id(), Org: id(), Act: OpMessageSend}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.DecideUncached(req); err != nil {
			b.Fatal(err)
		}
	}
}

// plugin.frame: a frame about a room needs a role in that room (not an
// admin role above it); a frame naming no room needs only a signed-in
// subject; a classified room stays closed to a lower clearance.
func TestPluginFrameDecisions(t *testing.T) {
	ctx := context.Background()
	e := newEnforcer(t, openStore(t), Options{})
	org, sp, room, other := id(), id(), id(), id()
	guest, admin, outsider, super := id(), id(), id(), id()
	if err := e.Assign(ctx, Assignment{User(admin), RoleOrgadmin, "org:" + org}); err != nil {
		t.Fatal(err)
	}
	if err := e.Assign(ctx, Assignment{User(super), RoleSuperadmin, SysDomain}); err != nil {
		t.Fatal(err)
	}
	e.SetRoomRole(guest, room, "guest")
	at := func(r string) Request {
		return Request{Room: r, Space: sp, Org: org, Env: Env{Kind: store.KindPrivate}}
	}
	cases := []struct {
		name string
		who  string
		req  Request
		want bool
	}{
		{"room guest in own room", guest, at(room), true},
		{"room guest in another room", guest, at(other), false},
		{"orgadmin, not a member", admin, at(room), false},
		{"superadmin, not a member", super, at(room), false},
		{"outsider", outsider, at(room), false},
		{"no room: any signed-in user", outsider, Request{}, true},
		{"no room: guest", guest, Request{}, true},
	}
	for _, c := range cases {
		c.req.Sub, c.req.Act = User(c.who), OpPluginFrame
		if got := e.Decide(c.req); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	classified := at(room)
	classified.Sub, classified.Act, classified.Env.Classification = User(guest), OpPluginFrame, 10
	if e.Decide(classified) {
		t.Error("room classified above the member's clearance: plugin.frame allowed")
	}
}

// A database seeded before plugin.frame existed gets its default rules
// once, on the next start; an operator's later removal sticks.
func TestSeedAdditionsReachOldDatabases(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	// The state an older release left: the first seed done, no additions.
	var old []store.AuthzRule
	for _, p := range DefaultPolicies() {
		if p.Act != OpPluginFrame {
			old = append(old, ruleOf("p", p.rule()))
		}
	}
	if err := st.AddAuthzRules(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkMigration(ctx, SeedStep); err != nil {
		t.Fatal(err)
	}
	e := newEnforcer(t, st, Options{})
	if n := len(e.Policies()); n != len(DefaultPolicies()) {
		t.Fatalf("%d policies after upgrade, want %d", n, len(DefaultPolicies()))
	}
	if !e.Decide(Request{Sub: User(id()), Act: OpPluginFrame}) {
		t.Fatal("plugin.frame without a room refused after upgrade")
	}
	if _, err := e.RemovePolicy(ctx, pluginFramePolicies()[1]); err != nil {
		t.Fatal(err)
	}
	e2 := newEnforcer(t, st, Options{})
	if n := len(e2.Policies()); n != len(DefaultPolicies())-1 {
		t.Fatalf("restart re-added a removed default: %d policies", n)
	}
}
