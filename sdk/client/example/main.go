// Command example is the README's first client: it joins a room, then either
// sends one message and prints the ack, or prints the room's history (sync)
// and every frame that arrives until interrupted.
//
//	go run ./sdk/client/example -token "$TOKEN" -room "$ROOM" -send "hello"
//	go run ./sdk/client/example -token "$TOKEN" -room "$ROOM"
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/unhidra/unhidra/sdk/client"
	"github.com/unhidra/unhidra/sdk/protocol"
)

func main() {
	url := flag.String("url", "ws://127.0.0.1:8080/v1/ws", "WebSocket endpoint")
	token := flag.String("token", "", "access token from POST /v1/auth/login")
	room := flag.String("room", "", "room id")
	send := flag.String("send", "", "send this text and exit (otherwise listen)")
	flag.Parse()
	if *token == "" || *room == "" {
		fmt.Fprintln(os.Stderr, "usage: example -token TOKEN -room ROOM [-send TEXT]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *url, *token, *room, *send); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url, token, room, send string) error {
	c, err := client.Dial(ctx, url, client.Options{Token: token})
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Join(ctx, room); err != nil { // a no-op if already a member
		return fmt.Errorf("join %s: %w", room, err)
	}
	if send != "" {
		ack, err := c.Send(ctx, room, send)
		if err != nil {
			return err
		}
		return print("ack", ack)
	}
	history, err := c.Sync(ctx, room, 0)
	if err != nil {
		return fmt.Errorf("sync %s: %w", room, err)
	}
	for _, f := range history {
		if err := print("sync", f); err != nil {
			return err
		}
	}
	fmt.Println("listening; Ctrl-C to stop")
	for {
		select {
		case f, ok := <-c.Events():
			if !ok {
				return c.Err()
			}
			if err := print("live", f); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func print(label string, f protocol.Frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	fmt.Printf("%-4s %s\n", label, b)
	return nil
}
