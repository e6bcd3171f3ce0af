package server_test

import (
	"encoding/json"
	"testing"

	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// TestClearanceClosesEveryRoomOperation is issue 12 item 8: in a room
// classified above a user's clearance, whatever their role, only leaving is
// left: no deleting (own or others'), kicking, adding or role changes.
func TestClearanceClosesEveryRoomOperation(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := ctx(t)
	admin := env.NewUser(t, "admin") // superadmin
	owner, bob, carol := env.NewUser(t, "owner"), env.NewUser(t, "bob"), env.NewUser(t, "carol")
	room, err := owner.API.CreateRoom(ctx, "secret", "private", bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	co, cb := env.Dial(t, owner), env.Dial(t, bob)
	mine, err := co.Send(ctx, room.ID, "owner's")
	if err != nil {
		t.Fatal(err)
	}
	bobs, err := cb.Send(ctx, room.ID, "bob's")
	if err != nil {
		t.Fatal(err)
	}
	// The owner classifies the room above everyone's clearance (0).
	if err := owner.API.Do(ctx, "PATCH", "/v1/rooms/"+room.ID, map[string]int{"classification": 50}, nil); err != nil {
		t.Fatal(err)
	}
	refused := func(what string, err error) {
		t.Helper()
		if c := servertest.Code(err); c != protocol.CodeForbidden && c != protocol.CodeNotFound {
			t.Errorf("%s in a room above clearance: %v, want forbidden or not_found", what, err)
		}
	}
	msg := "/v1/rooms/" + room.ID + "/messages/"
	refused("owner deletes own message", owner.API.Do(ctx, "DELETE", msg+mine.ID, nil, nil))
	refused("bob deletes own message", bob.API.Do(ctx, "DELETE", msg+bobs.ID, nil, nil))
	refused("owner deletes bob's message", owner.API.Do(ctx, "DELETE", msg+bobs.ID, nil, nil))
	_, err = co.Delete(ctx, room.ID, mine.ID)
	refused("owner's delete frame", err)
	refused("owner kicks bob", owner.API.RemoveMember(ctx, room.ID, bob.ID))
	refused("owner adds carol (PUT)", owner.API.SetRoomRole(ctx, room.ID, carol.ID, "member"))
	refused("owner adds carol (POST)", owner.API.AddMember(ctx, room.ID, carol.ID))
	refused("owner changes bob's role", owner.API.SetRoomRole(ctx, room.ID, bob.ID, "guest"))
	refused("owner lowers the classification", owner.API.Do(ctx, "PATCH", "/v1/rooms/"+room.ID, map[string]int{"classification": 0}, nil))
	refused("superadmin kicks bob", admin.API.RemoveMember(ctx, room.ID, bob.ID))
	refused("superadmin assigns carol", admin.API.Assign(ctx, client.Assignment{Subject: carol.ID, Role: "member", Scope: "room:" + room.ID}))
	// Nothing changed: once cleared, the owner sees both messages and both members.
	for _, u := range []servertest.User{owner, admin} {
		if err := admin.API.Do(ctx, "PUT", "/v1/admin/users/"+u.ID+"/clearance", map[string]int{"clearance": 50}, nil); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := owner.API.HistoryFrom(ctx, room.ID, 0, 10)
	if err != nil || len(ms) != 2 || ms[0].Deleted || ms[1].Deleted {
		t.Fatalf("history: %+v %v", ms, err)
	}
	var members struct {
		Members []json.RawMessage `json:"members"`
	}
	if err := owner.API.Do(ctx, "GET", "/v1/rooms/"+room.ID+"/members", nil, &members); err != nil || len(members.Members) != 2 {
		t.Fatalf("members: %d %v", len(members.Members), err)
	}
	// Leaving stays possible without clearance.
	if err := bob.API.Do(ctx, "POST", "/v1/rooms/"+room.ID+"/leave", nil, nil); err != nil {
		t.Errorf("leave a room above clearance: %v", err)
	}
}
