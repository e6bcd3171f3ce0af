package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/unhidra/unhidra/core/chat"
	pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"
	"github.com/unhidra/unhidra/sdk/protocol"
)

// maxPluginData bounds the data of a plugin's reply to a client frame and of
// an event it publishes.
const maxPluginData = 64 << 10

// ClientFrame implements chat.Hooks: it routes an authorised client frame to
// the OnClientFrame hook of the plugin owning its namespace. The plugin's
// error_code (from the protocol's closed list, else bad_request) reaches the
// sender as is; a plugin that fails, is down or misses its deadline answers
// unavailable.
func (h *Host) ClientFrame(ctx context.Context, f chat.PluginFrame) (json.RawMessage, error) {
	const hook = pb.Hook_HOOK_ON_CLIENT_FRAME
	m := h.plugin(f.Plugin)
	if m == nil || !m.implements(hook) {
		return nil, chat.Errorf(protocol.CodeNotFound, "no plugin %q answers client frames", f.Plugin)
	}
	req := &pb.ClientFrame{Op: f.Op, Ref: f.Ref, Room: f.Room, DataJson: f.Data, UserId: f.User, SessionId: f.Session}
	resp := &pb.ClientFrameReply{}
	err := h.Call(ctx, m.id, hook, req, resp)
	if err == nil {
		if err = checkReply(resp); err != nil {
			m.hooks[hook].failed(err, false)
		}
	}
	if err != nil {
		m.log().Warn("plugin client frame failed", "op", f.Op, "err", err)
		msg := "plugin " + m.id + " is unavailable; try again shortly"
		if st, ok := status.FromError(err); ok && st.Code() == codes.Unknown && !errors.Is(err, errBadVerdict) {
			msg = "plugin " + m.id + ": " + st.Message() // the plugin's own error text
		}
		return nil, chat.Errorf(protocol.CodeUnavailable, "%s", msg)
	}
	if resp.ErrorCode != "" {
		code := resp.ErrorCode
		if !slices.Contains(protocol.Codes, code) {
			code = protocol.CodeBadRequest
		}
		msg := resp.ErrorMessage
		if msg == "" {
			msg = fmt.Sprintf("plugin %s refused %q", m.id, f.Op)
		}
		return nil, chat.Errorf(code, "%s", msg)
	}
	if len(resp.DataJson) == 0 {
		return json.RawMessage(`{}`), nil
	}
	return resp.DataJson, nil
}

// checkReply validates a plugin's answer to a client frame.
func checkReply(r *pb.ClientFrameReply) error {
	if r.ErrorCode != "" {
		if !utf8.ValidString(r.ErrorMessage) || len(r.ErrorMessage) > 1024 {
			return fmt.Errorf("%w: error_message is not UTF-8 or longer than 1024 bytes", errBadVerdict)
		}
		return nil
	}
	if err := checkData(r.DataJson); err != nil {
		return fmt.Errorf("%w: reply %v", errBadVerdict, err)
	}
	return nil
}

// checkData accepts empty data or one JSON value of at most maxPluginData.
func checkData(b []byte) error {
	if len(b) > maxPluginData {
		return fmt.Errorf("data_json is %d bytes; the limit is %d", len(b), maxPluginData)
	}
	if len(b) > 0 && !json.Valid(b) {
		return errors.New("data_json is not a JSON value")
	}
	return nil
}
