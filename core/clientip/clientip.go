// Package clientip finds the client address of a request, which the front
// door keys lockout, throttling and rate limits by (grouped by Key: IPv6 by
// /64). Without trusted proxies
// it is the TCP peer. When the peer is a trusted proxy, it is the rightmost
// X-Forwarded-For entry that is not itself a trusted proxy: proxies append
// what they saw, so entries left of that one were written by the client and
// cannot be believed.
package clientip

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Resolver resolves client addresses. A nil *Resolver uses the TCP peer.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a resolver trusting the given proxies (CIDRs or single
// addresses); nil when the list is empty.
func New(proxies []string) (*Resolver, error) {
	var r Resolver
	for _, p := range proxies {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !strings.Contains(p, "/") {
			a, err := netip.ParseAddr(p)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: not an address or CIDR", p)
			}
			r.trusted = append(r.trusted, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		pf, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", p, err)
		}
		r.trusted = append(r.trusted, pf.Masked())
	}
	if len(r.trusted) == 0 {
		return nil, nil
	}
	return &r, nil
}

// Trusted reports whether a is one of the trusted proxies (never, for a nil
// Resolver).
func (r *Resolver) Trusted(a netip.Addr) bool {
	return r != nil && r.isTrusted(a)
}

func (r *Resolver) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// IP returns the client address of c.
func (r *Resolver) IP(c *fiber.Ctx) string {
	peer, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	if !ok {
		return c.IP()
	}
	peer = peer.Unmap()
	if r == nil || !r.isTrusted(peer) {
		return peer.String()
	}
	var hops [][]byte
	for _, h := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		hops = append(hops, bytes.Split(h, []byte(","))...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(string(bytes.TrimSpace(hops[i])))
		if err != nil {
			break // garbage: count the request against the last proxy we trust
		}
		client = a.Unmap()
		if !r.isTrusted(client) {
			break
		}
	}
	return client.String()
}

// Group is what per-address limits count by: an IPv4 address on its own,
// an IPv6 address by its /64. One host or one home network is normally
// given a whole /64, so counting single IPv6 addresses would hand it 2^64
// budgets. The zero Prefix stands for an invalid address.
func Group(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return netip.Prefix{}
	}
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// Key is the text form of Group for a client address as IP returns it:
// "192.0.2.7" stays itself, "2001:db8:1:2::7" becomes "2001:db8:1:2::/64".
// Text that is not an address is its own key.
func Key(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if g := Group(a); g.Addr().Is6() {
		return g.String()
	}
	return a.Unmap().String()
}
