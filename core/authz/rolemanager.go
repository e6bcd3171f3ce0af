package authz

import (
	"sort"
	"strings"

	"github.com/casbin/casbin/v2/log"
	"github.com/casbin/casbin/v2/rbac"
)

// AnyDomain is the domain of role-to-role links (g, orgadmin, spaceadmin, *):
// inheritance that holds in every domain.
const AnyDomain = "*"

// SysDomain is the system-wide domain (superadmin lives here).
const SysDomain = "sys"

// RoleAuthenticated is held implicitly by every subject in SysDomain, so that
// "any verified caller may read their own account" is a policy like others.
const RoleAuthenticated = "authenticated"

// scopedRoles is a Casbin role manager built for the org → space → room tree.
// Casbin's default domain manager applies pattern domains by scanning every
// domain on each change and each unknown lookup, which costs O(domains) with
// one domain per room; this one keeps two plain maps instead:
//
//	links[domain][subject] → roles held directly in that domain
//	closure[role]          → every role it inherits (from AnyDomain links)
//
// so HasLink is a handful of map lookups whatever the number of rooms. It is
// not safe for concurrent mutation; the Enforcer serializes writers.
type scopedRoles struct {
	links   map[string]map[string][]string
	parents map[string][]string        // role → directly inherited roles
	closure map[string]map[string]bool // role → all inherited roles
}

var _ rbac.RoleManager = (*scopedRoles)(nil)

func newScopedRoles() *scopedRoles {
	rm := &scopedRoles{}
	_ = rm.Clear()
	return rm
}

func (rm *scopedRoles) Clear() error {
	rm.links = map[string]map[string][]string{}
	rm.parents = map[string][]string{}
	rm.closure = map[string]map[string]bool{}
	return nil
}

func domainOf(domain []string) string {
	if len(domain) == 0 {
		return AnyDomain
	}
	return domain[0]
}

func (rm *scopedRoles) AddLink(name1, name2 string, domain ...string) error {
	d := domainOf(domain)
	if d == AnyDomain {
		for _, p := range rm.parents[name1] {
			if p == name2 {
				return nil
			}
		}
		rm.parents[name1] = append(rm.parents[name1], name2)
		rm.rebuildClosure()
		return nil
	}
	m := rm.links[d]
	if m == nil {
		m = map[string][]string{}
		rm.links[d] = m
	}
	for _, r := range m[name1] {
		if r == name2 {
			return nil
		}
	}
	m[name1] = append(m[name1], name2)
	return nil
}

func (rm *scopedRoles) DeleteLink(name1, name2 string, domain ...string) error {
	d := domainOf(domain)
	if d == AnyDomain {
		rm.parents[name1] = without(rm.parents[name1], name2)
		if len(rm.parents[name1]) == 0 {
			delete(rm.parents, name1)
		}
		rm.rebuildClosure()
		return nil
	}
	m := rm.links[d]
	if m == nil {
		return nil
	}
	m[name1] = without(m[name1], name2)
	if len(m[name1]) == 0 {
		delete(m, name1)
	}
	if len(m) == 0 {
		delete(rm.links, d)
	}
	return nil
}

func without(s []string, v string) []string {
	out := s[:0]
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

// rebuildClosure recomputes the transitive inheritance of every role. The
// hierarchy has a handful of roles, so this is cheap; cycles are harmless.
func (rm *scopedRoles) rebuildClosure() {
	rm.closure = map[string]map[string]bool{}
	for r := range rm.parents {
		seen := map[string]bool{}
		stack := append([]string(nil), rm.parents[r]...)
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[x] {
				continue
			}
			seen[x] = true
			stack = append(stack, rm.parents[x]...)
		}
		rm.closure[r] = seen
	}
}

func (rm *scopedRoles) BuildRelationship(name1, name2 string, domain ...string) error {
	return rm.AddLink(name1, name2, domain...)
}

// HasLink reports whether name1 holds role name2 in domain: directly, through
// a role it holds there that inherits name2, or (for a role) by inheritance.
func (rm *scopedRoles) HasLink(name1, name2 string, domain ...string) (bool, error) {
	if name1 == name2 {
		return true, nil
	}
	d := domainOf(domain)
	if name2 == RoleAuthenticated && d == SysDomain && IsSubject(name1) {
		return true, nil
	}
	for _, r := range rm.links[d][name1] {
		if r == name2 || rm.closure[r][name2] {
			return true, nil
		}
	}
	return rm.closure[name1][name2], nil
}

func (rm *scopedRoles) GetRoles(name string, domain ...string) ([]string, error) {
	d := domainOf(domain)
	if d == AnyDomain {
		return append([]string(nil), rm.parents[name]...), nil
	}
	return append([]string(nil), rm.links[d][name]...), nil
}

func (rm *scopedRoles) GetUsers(name string, domain ...string) ([]string, error) {
	d := domainOf(domain)
	var out []string
	if d == AnyDomain {
		for r, ps := range rm.parents {
			for _, p := range ps {
				if p == name {
					out = append(out, r)
				}
			}
		}
	} else {
		for u, rs := range rm.links[d] {
			for _, r := range rs {
				if r == name {
					out = append(out, u)
				}
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func (rm *scopedRoles) GetImplicitRoles(name string, domain ...string) ([]string, error) {
	direct, _ := rm.GetRoles(name, domain...)
	set := map[string]bool{}
	for _, r := range direct {
		set[r] = true
		for x := range rm.closure[r] {
			set[x] = true
		}
	}
	out := make([]string, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out, nil
}

func (rm *scopedRoles) GetImplicitUsers(name string, domain ...string) ([]string, error) {
	d := domainOf(domain)
	var out []string
	for u, rs := range rm.links[d] {
		for _, r := range rs {
			if r == name || rm.closure[r][name] {
				out = append(out, u)
				break
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func (rm *scopedRoles) GetDomains(name string) ([]string, error) {
	var out []string
	for d, m := range rm.links {
		if len(m[name]) > 0 {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (rm *scopedRoles) GetAllDomains() ([]string, error) {
	out := make([]string, 0, len(rm.links))
	for d := range rm.links {
		out = append(out, d)
	}
	sort.Strings(out)
	return out, nil
}

func (rm *scopedRoles) PrintRoles() error                               { return nil }
func (rm *scopedRoles) SetLogger(log.Logger)                            {}
func (rm *scopedRoles) Match(str, pattern string) bool                  { return str == pattern }
func (rm *scopedRoles) AddMatchingFunc(string, rbac.MatchingFunc)       {}
func (rm *scopedRoles) AddDomainMatchingFunc(string, rbac.MatchingFunc) {}

func (rm *scopedRoles) DeleteDomain(domain string) error {
	delete(rm.links, domain)
	return nil
}

// IsSubject reports whether s names a principal ("user:…", "bot:…",
// "device:…", "plugin:…") rather than a role.
func IsSubject(s string) bool {
	i := strings.IndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return false
	}
	switch s[:i] {
	case KindUser, KindBot, KindDevice, KindPlugin:
		return true
	}
	return false
}

// Subject kinds.
const (
	KindUser   = "user"
	KindBot    = "bot"
	KindDevice = "device"
	KindPlugin = "plugin"
)

// User is the subject name of a user id.
func User(id string) string { return KindUser + ":" + id }

// Plugin is the subject name of a plugin id.
func Plugin(id string) string { return KindPlugin + ":" + id }
