package pluginhost_test

import (
	"encoding/json"
	"testing"

	"github.com/unhidra/unhidra/core/pluginhost"
)

// MaskConfig hides secret-looking values at any depth and keeps the rest,
// so the admin API (and the console) can show a plugin's effective config.
func TestMaskConfig(t *testing.T) {
	m := pluginhost.Masked
	for _, tc := range []struct{ in, want string }{
		{``, `{}`},
		{`not json`, `{}`},
		{`{"word":"darn"}`, `{"word":"darn"}`},
		{`{"api_token":"s3cret","word":"darn"}`, `{"api_token":"` + m + `","word":"darn"}`},
		{`{"oidc":{"clientSecret":"cs","issuer":"https://idp"},"keys":2,"key":"k","apiKey":"a","api-key":"b"}`,
			`{"api-key":"` + m + `","apiKey":"` + m + `","key":"` + m + `","keys":2,"oidc":{"clientSecret":"` + m + `","issuer":"https://idp"}}`},
		{`{"users":[{"name":"x","password":"pw"}],"private_key":{"pem":"…"}}`,
			`{"private_key":"` + m + `","users":[{"name":"x","password":"` + m + `"}]}`},
		{`{"token":"","password":null}`, `{"password":null,"token":""}`}, // nothing to hide
	} {
		got := pluginhost.MaskConfig(json.RawMessage(tc.in))
		if string(got) != tc.want {
			t.Errorf("MaskConfig(%s)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}
