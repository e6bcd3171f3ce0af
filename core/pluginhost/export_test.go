package pluginhost

import pb "github.com/unhidra/unhidra/sdk/proto/pluginv1"

// HostAPIOf is the host API plugin id calls, for tests that drive a
// plugin's host calls without its program (grants are checked in front of
// it, so they do not apply here).
func HostAPIOf(h *Host, id string) pb.HostServer { return &hostAPI{m: h.plugin(id)} }
