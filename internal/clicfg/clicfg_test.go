package clicfg

import "testing"

func TestLocalURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{":8682", "http://127.0.0.1:8682"},
		{"0.0.0.0:8682", "http://127.0.0.1:8682"},
		{"[::]:9090", "http://127.0.0.1:9090"},
		{"127.0.0.1:1234", "http://127.0.0.1:1234"},
		{"10.1.2.3:80", "http://10.1.2.3:80"},
		{"[::1]:80", "http://[::1]:80"},
		{"", ""},
	} {
		if got := LocalURL(tc.in); got != tc.want {
			t.Errorf("LocalURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
