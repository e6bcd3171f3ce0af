package server_test

import (
	"testing"
	"time"

	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// TestAdminDevices: an admin lists another user's devices (the console's
// People view names sessions by device) and revokes one, which closes the
// sessions bound to it and nothing else. Bad input changes nothing.
func TestAdminDevices(t *testing.T) {
	eachBackend(t, func(t *testing.T, env *servertest.Env) {
		ctx := ctx(t)
		admin := env.NewUser(t, "root") // first account: superadmin
		adm := &client.API{Base: env.URL, Token: admin.Token}
		bob := env.NewUser(t, "bob")
		phone := &client.API{Base: env.URL}
		tp, err := phone.LoginDevice(ctx, "bob", "password-bob", client.Device{Name: "Bob's phone", Platform: "android"})
		if err != nil {
			t.Fatal(err)
		}
		laptop := &client.API{Base: env.URL}
		tl, err := laptop.LoginDevice(ctx, "bob", "password-bob", client.Device{Name: "Bob's laptop", Platform: "linux"})
		if err != nil {
			t.Fatal(err)
		}
		wsPhone, wsLaptop := dialToken(t, env, tp.AccessToken), dialToken(t, env, tl.AccessToken)

		type device struct {
			ID        string `json:"id"`
			Name      string `json:"name"`
			Platform  string `json:"platform"`
			RevokedAt int64  `json:"revoked_at"`
		}
		list := func(query string) map[string]device {
			t.Helper()
			var out struct {
				Devices []device `json:"devices"`
			}
			if err := adm.Do(ctx, "GET", "/v1/admin/users/"+bob.ID+"/devices"+query, nil, &out); err != nil {
				t.Fatal(err)
			}
			m := map[string]device{}
			for _, d := range out.Devices {
				m[d.Name] = d
			}
			return m
		}
		ds := list("")
		if ds["Bob's phone"].ID != tp.DeviceID || ds["Bob's laptop"].Platform != "linux" || len(ds) != 3 { // + NewUser's login
			t.Fatalf("devices %+v", ds)
		}

		// Bad input: unknown user, unknown device, another user's device, a member asking.
		for _, tc := range []struct {
			method, path string
			status       int
		}{
			{"GET", "/v1/admin/users/00000000-0000-0000-0000-000000000000/devices", 404},
			{"GET", "/v1/admin/users/not-a-user/devices", 404},
			{"DELETE", "/v1/admin/users/" + bob.ID + "/devices/00000000-0000-0000-0000-000000000000", 404},
			{"DELETE", "/v1/admin/users/" + admin.ID + "/devices/" + tp.DeviceID, 404},
		} {
			if err := adm.Do(ctx, tc.method, tc.path, nil, nil); apiErr(t, err).Status != tc.status {
				t.Errorf("%s %s: %v, want %d", tc.method, tc.path, err, tc.status)
			}
		}
		for _, r := range [][2]string{
			{"GET", "/v1/admin/users/" + bob.ID + "/devices"},
			{"DELETE", "/v1/admin/users/" + bob.ID + "/devices/" + tp.DeviceID},
		} {
			if err := bob.API.Do(ctx, r[0], r[1], nil, nil); apiErr(t, err).Status != 403 {
				t.Errorf("member %s %s: %v, want 403", r[0], r[1], err)
			}
		}
		if err := wsPhone.Ping(ctx); err != nil {
			t.Fatalf("bad requests touched the phone's session: %v", err)
		}

		// Revoking the phone closes the phone's socket only.
		start := time.Now()
		if err := adm.Do(ctx, "DELETE", "/v1/admin/users/"+bob.ID+"/devices/"+tp.DeviceID, nil, nil); err != nil {
			t.Fatal(err)
		}
		awaitGoodbye(t, wsPhone, protocol.ReasonRevoked, start)
		if err := wsLaptop.Ping(ctx); err != nil {
			t.Fatalf("revoking the phone closed the laptop: %v", err)
		}
		if _, ok := list("")["Bob's phone"]; ok {
			t.Fatal("a revoked device is still listed as active")
		}
		if d := list("?all=1")["Bob's phone"]; d.RevokedAt == 0 {
			t.Fatalf("?all=1 should list the revoked phone with revoked_at: %+v", d)
		}
		if err := adm.Do(ctx, "DELETE", "/v1/admin/users/"+bob.ID+"/devices/"+tp.DeviceID, nil, nil); apiErr(t, err).Status != 404 {
			t.Fatalf("revoking twice: %v, want 404", err)
		}
	})
}
