package clientip

import (
	"net/netip"
	"testing"
)

func TestKeyGroupsIPv6By64(t *testing.T) {
	for _, c := range []struct{ ip, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2::7", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::7", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"not an address", "not an address"},
	} {
		if got := Key(c.ip); got != c.want {
			t.Errorf("Key(%q) = %q, want %q", c.ip, got, c.want)
		}
	}
	if g := Group(netip.Addr{}); g.IsValid() {
		t.Errorf("Group(invalid) = %v, want the zero Prefix", g)
	}
}

func TestTrustedOnNilResolver(t *testing.T) {
	var r *Resolver
	if r.Trusted(netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("a nil resolver trusts nobody")
	}
	r, err := New([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Trusted(netip.MustParseAddr("::ffff:10.1.2.3")) || r.Trusted(netip.MustParseAddr("11.0.0.1")) {
		t.Fatal("Trusted does not follow the proxy list")
	}
}
