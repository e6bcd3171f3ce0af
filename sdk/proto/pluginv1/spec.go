package pluginv1

import (
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// HookSpec is one hook as plugin.proto declares it: the rpc of the Plugin
// service and its `(hook)` options. Host and SDKs read hooks from here, so
// the proto stays the one declaration.
type HookSpec struct {
	Hook Hook
	// Name is the rpc name ("MessageWillBePosted"), the name plugins.yaml
	// and the WASM ABI use.
	Name string
	// FullMethod is the gRPC method ("/unhidra.plugin.v1.Plugin/…").
	FullMethod string
	Kind       HookKind
	Deadline   time.Duration
	Policy     FailurePolicy
	// Grant is what a plugin must hold for the host to call the hook.
	Grant string
	// Request and Response are the rpc's message types (nil for the
	// streaming ServeHTTP).
	Request, Response protoreflect.MessageType
}

// NewRequest returns an empty request message of the hook.
func (s HookSpec) NewRequest() proto.Message { return s.Request.New().Interface() }

// NewResponse returns an empty response message of the hook.
func (s HookSpec) NewResponse() proto.Message { return s.Response.New().Interface() }

type specs struct {
	hooks    []HookSpec // declaration order, Hook != UNSPECIFIED
	byHook   map[Hook]HookSpec
	byName   map[string]HookSpec
	byMethod map[string]HookSpec
	grants   map[string]string // Host full method → grant
}

var loadSpecs = sync.OnceValue(func() *specs {
	s := &specs{byHook: map[Hook]HookSpec{}, byName: map[string]HookSpec{}, byMethod: map[string]HookSpec{},
		grants: map[string]string{}}
	svc := File_pluginv1_plugin_proto.Services()
	plug := svc.ByName("Plugin")
	ms := plug.Methods()
	for i := 0; i < ms.Len(); i++ {
		m := ms.Get(i)
		opt, _ := proto.GetExtension(m.Options(), E_Hook).(*HookOptions)
		if opt == nil || opt.Id == Hook_HOOK_UNSPECIFIED {
			continue
		}
		hs := HookSpec{Hook: opt.Id, Name: string(m.Name()), FullMethod: "/" + string(plug.FullName()) + "/" + string(m.Name()),
			Kind: opt.Kind, Deadline: time.Duration(opt.DeadlineMs) * time.Millisecond, Policy: opt.Policy, Grant: opt.Grant}
		if hs.Policy == FailurePolicy_FAILURE_POLICY_UNSPECIFIED {
			hs.Policy = FailurePolicy_FAILURE_POLICY_OPEN
		}
		if !m.IsStreamingClient() && !m.IsStreamingServer() {
			hs.Request = messageType(m.Input())
			hs.Response = messageType(m.Output())
		}
		s.hooks = append(s.hooks, hs)
		s.byHook[hs.Hook] = hs
		s.byName[hs.Name] = hs
		s.byMethod[hs.FullMethod] = hs
	}
	host := svc.ByName("Host")
	ms = host.Methods()
	for i := 0; i < ms.Len(); i++ {
		m := ms.Get(i)
		opt, _ := proto.GetExtension(m.Options(), E_HostCall).(*HostCallOptions)
		if opt == nil {
			continue // no declared grant: refused
		}
		s.grants["/"+string(host.FullName())+"/"+string(m.Name())] = opt.Grant
	}
	return s
})

func messageType(d protoreflect.MessageDescriptor) protoreflect.MessageType {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(d.FullName())
	if err != nil {
		panic("pluginv1: message " + string(d.FullName()) + " is not registered: " + err.Error())
	}
	return mt
}

// Hooks returns every hook in declaration order.
func Hooks() []HookSpec { return slices.Clone(loadSpecs().hooks) }

// HookSpecOf returns the declaration of h.
func HookSpecOf(h Hook) (HookSpec, bool) {
	s, ok := loadSpecs().byHook[h]
	return s, ok
}

// HookByName returns the hook whose rpc is named name ("OnTick").
func HookByName(name string) (HookSpec, bool) {
	s, ok := loadSpecs().byName[name]
	return s, ok
}

// HookByMethod returns the hook whose gRPC full method is method.
func HookByMethod(method string) (HookSpec, bool) {
	s, ok := loadSpecs().byMethod[method]
	return s, ok
}

// HostCallGrant returns the grant the Host rpc method (a gRPC full method)
// needs; ok is false for a method that declares none, which the host refuses.
func HostCallGrant(method string) (grant string, ok bool) {
	g, ok := loadSpecs().grants[method]
	return g, ok
}

// Grants lists every grant a Host rpc or a hook declares, sorted.
func Grants() []string {
	s := loadSpecs()
	var out []string
	for _, g := range s.grants {
		if g != "" && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	for _, h := range s.hooks {
		if h.Grant != "" && !slices.Contains(out, h.Grant) {
			out = append(out, h.Grant)
		}
	}
	slices.Sort(out)
	return out
}
