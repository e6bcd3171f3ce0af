package server_test

import (
	"testing"

	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/core/store"
	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// TestDirectRoomsKeepTwoMembers is issue 12 item 5: no path adds a third
// person to a direct room.
func TestDirectRoomsKeepTwoMembers(t *testing.T) {
	eachBackend(t, func(t *testing.T, env *servertest.Env) {
		ctx := ctx(t)
		alice := env.NewUser(t, "alice") // superadmin
		bob, carol, dave := env.NewUser(t, "bob"), env.NewUser(t, "carol"), env.NewUser(t, "dave")
		if err := alice.API.SetOrgMember(ctx, store.DefaultOrg, dave.ID, "orgadmin"); err != nil {
			t.Fatal(err)
		}
		dm, err := alice.API.CreateRoom(ctx, "", "direct", bob.ID)
		if err != nil {
			t.Fatal(err)
		}
		servertest.WantCode(t, "POST members", alice.API.AddMember(ctx, dm.ID, carol.ID), protocol.CodeBadRequest)
		servertest.WantCode(t, "PUT members", alice.API.SetRoomRole(ctx, dm.ID, carol.ID, "member"), protocol.CodeBadRequest)
		servertest.WantCode(t, "PUT admin assignment", alice.API.Assign(ctx, client.Assignment{Subject: carol.ID, Role: "member", Scope: "room:" + dm.ID}),
			protocol.CodeBadRequest)
		servertest.WantCode(t, "orgadmin joins", dave.API.JoinRoom(ctx, dm.ID), protocol.CodeBadRequest)
		cd := env.Dial(t, dave)
		_, err = cd.Join(ctx, dm.ID)
		servertest.WantCode(t, "orgadmin join frame", err, protocol.CodeBadRequest)
		// The two members may still change their own roles there.
		if err := alice.API.SetRoomRole(ctx, dm.ID, bob.ID, "member"); err != nil {
			t.Errorf("role of an existing member: %v", err)
		}
		var ms struct {
			Members []struct {
				User string `json:"user"`
			} `json:"members"`
		}
		if err := alice.API.Do(ctx, "GET", "/v1/rooms/"+dm.ID+"/members", nil, &ms); err != nil {
			t.Fatal(err)
		}
		if len(ms.Members) != 2 {
			t.Fatalf("direct room has %d members: %+v", len(ms.Members), ms.Members)
		}
	})
}
