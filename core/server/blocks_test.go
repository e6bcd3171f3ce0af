package server_test

import (
	"net/url"
	"testing"

	"github.com/unhidra/unhidra/core/servertest"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// TestLeaveAndBlockRooms is issue 12 item 6 (people): anyone may leave a
// group room they were put in, and may block being added to rooms by one
// person or by everyone.
func TestLeaveAndBlockRooms(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := ctx(t)
	alice, bob, carol := env.NewUser(t, "alice"), env.NewUser(t, "bob"), env.NewUser(t, "carol")
	cb := env.Dial(t, bob)
	g1, err := alice.API.CreateRoom(ctx, "", "group", bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := alice.API.CreateRoom(ctx, "", "group", bob.ID, carol.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cb.Leave(ctx, g1.ID); err != nil {
		t.Errorf("leave frame in a group room: %v", err)
	}
	if err := bob.API.Do(ctx, "POST", "/v1/rooms/"+g2.ID+"/leave", nil, nil); err != nil {
		t.Errorf("REST leave of a group room: %v", err)
	}
	// Bob blocks Alice.
	block := func(u servertest.User, who string) {
		t.Helper()
		if err := u.API.Do(ctx, "PUT", "/v1/me/blocks/"+url.PathEscape(who), nil, nil); err != nil {
			t.Fatalf("%s blocks %s: %v", u.Username, who, err)
		}
	}
	block(bob, "alice")
	_, err = alice.API.CreateRoom(ctx, "", "group", bob.ID)
	servertest.WantCode(t, "blocked: create a group with bob", err, protocol.CodeForbidden)
	_, err = alice.API.CreateRoom(ctx, "", "direct", bob.ID)
	servertest.WantCode(t, "blocked: direct room with bob", err, protocol.CodeForbidden)
	servertest.WantCode(t, "blocked: add bob", alice.API.AddMember(ctx, g1.ID, bob.ID), protocol.CodeForbidden)
	servertest.WantCode(t, "blocked: role for bob", alice.API.SetRoomRole(ctx, g1.ID, bob.ID, "member"), protocol.CodeForbidden)
	// Carol is not blocked.
	g3, err := carol.API.CreateRoom(ctx, "", "group", bob.ID)
	if err != nil {
		t.Fatalf("carol's group with bob: %v", err)
	}
	var list struct {
		Blocks []struct {
			User string `json:"user"`
		} `json:"blocks"`
	}
	if err := bob.API.Do(ctx, "GET", "/v1/me/blocks", nil, &list); err != nil || len(list.Blocks) != 1 || list.Blocks[0].User != alice.ID {
		t.Fatalf("bob's blocks: %+v %v", list, err)
	}
	// "*" blocks everyone; a member may still leave.
	block(bob, "*")
	_, err = carol.API.CreateRoom(ctx, "", "group", bob.ID)
	servertest.WantCode(t, "blocked by *: carol's group", err, protocol.CodeForbidden)
	if err := bob.API.RemoveMember(ctx, g3.ID, bob.ID); err != nil {
		t.Errorf("leave by DELETE members/self: %v", err)
	}
	// Unblocking restores it.
	for _, who := range []string{"*", alice.ID} {
		if err := bob.API.Do(ctx, "DELETE", "/v1/me/blocks/"+url.PathEscape(who), nil, nil); err != nil {
			t.Fatalf("unblock %s: %v", who, err)
		}
	}
	if err := alice.API.AddMember(ctx, g1.ID, bob.ID); err != nil {
		t.Fatalf("add bob after unblocking: %v", err)
	}
	servertest.WantCode(t, "unblock again", bob.API.Do(ctx, "DELETE", "/v1/me/blocks/"+alice.ID, nil, nil), protocol.CodeNotFound)
	servertest.WantCode(t, "block an unknown user", bob.API.Do(ctx, "PUT", "/v1/me/blocks/nobody", nil, nil), protocol.CodeNotFound)
}
