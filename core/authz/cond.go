package authz

import (
	"fmt"
	"strings"
	"time"
)

// Env is the attribute part of a request (ABAC): the subject's clearance
// (filled in by the Enforcer from its attribute table), the object room's
// classification and kind, and the time of the decision.
type Env struct {
	Clearance      int
	Classification int
	Kind           string // room kind: public, private, direct, group
	now            time.Time
}

// cond is a compiled policy condition: every clause must hold.
type cond []clause

type clause struct {
	kind string // "clr>=cls", "clr<cls", "kind=", "kind!=", "from", "until"
	arg  string
	at   time.Time
}

// parseCond compiles a condition string ("" is always true). Clauses are
// joined by " & "; see model.conf for the list.
func parseCond(s string) (cond, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var c cond
	for _, part := range strings.Split(s, "&") {
		p := strings.TrimSpace(part)
		switch {
		case p == "clearance>=classification":
			c = append(c, clause{kind: "clr>=cls"})
		case p == "clearance<classification":
			c = append(c, clause{kind: "clr<cls"})
		case strings.HasPrefix(p, "kind!="):
			c = append(c, clause{kind: "kind!=", arg: strings.TrimPrefix(p, "kind!=")})
		case strings.HasPrefix(p, "kind="):
			c = append(c, clause{kind: "kind=", arg: strings.TrimPrefix(p, "kind=")})
		case strings.HasPrefix(p, "from="), strings.HasPrefix(p, "until="):
			k, v, _ := strings.Cut(p, "=")
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return nil, fmt.Errorf("condition %q: %s wants an RFC 3339 time: %w", s, k, err)
			}
			c = append(c, clause{kind: k, at: t})
		default:
			return nil, fmt.Errorf("condition %q: unknown clause %q (want clearance>=classification, clearance<classification, kind=K, kind!=K, from=T or until=T)", s, p)
		}
	}
	return c, nil
}

func (c cond) eval(env *Env) bool {
	for _, cl := range c {
		var ok bool
		switch cl.kind {
		case "clr>=cls":
			ok = env.Clearance >= env.Classification
		case "clr<cls":
			ok = env.Clearance < env.Classification
		case "kind=":
			ok = env.Kind == cl.arg
		case "kind!=":
			ok = env.Kind != cl.arg
		case "from":
			ok = !env.now.Before(cl.at)
		case "until":
			ok = env.now.Before(cl.at)
		}
		if !ok {
			return false
		}
	}
	return true
}

// boundaries returns the instants at which the condition may change value
// on its own (time-bounded grants); cached decisions must not outlive them.
func (c cond) boundaries() []time.Time {
	var out []time.Time
	for _, cl := range c {
		if cl.kind == "from" || cl.kind == "until" {
			out = append(out, cl.at)
		}
	}
	return out
}
