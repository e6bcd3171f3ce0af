// Package clientip finds the client address of a request, which the front
// door keys lockout, throttling and rate limits by. Without trusted proxies
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
