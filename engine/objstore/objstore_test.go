package objstore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/akosha/akosha/engine/objstore"
)

func TestValidKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"a", true},
		{"a/b/c.txt", true},
		{"warm/2026/11/25/20261125T020000Z-abcd/manifest.json", true},
		{".hidden/..dots/x.", true},
		{"sp ace/ü", true},
		{strings.Repeat("k", objstore.MaxKeyLen), true},
		{strings.Repeat("k", objstore.MaxKeyLen+1), false},
		{"", false},
		{"/x", false},
		{"x/", false},
		{"a//b", false},
		{"..", false},
		{".", false},
		{"../x", false},
		{"a/../b", false},
		{"a/./b", false},
		{"a/..", false},
		{"a\\b", false},
		{"x\x00", false},
		{"a\nb", false},
		{"a\x7fb", false},
		{"\xff", false},
	} {
		err := objstore.ValidKey(tc.key)
		if got := err == nil; got != tc.ok {
			t.Errorf("ValidKey(%q) = %v, want ok=%v", tc.key, err, tc.ok)
		}
		if err != nil && !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("ValidKey(%q) = %v, does not match ErrInvalidKey", tc.key, err)
		}
	}
}

func TestValidPrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		ok     bool
	}{
		{"", true},
		{"a", true},
		{"a/", true},
		{"a/b", true},
		{"a/b/", true},
		{"a/b-", true},
		{"/", false},
		{"/a", false},
		{"a//", false},
		{"a//b", false},
		{"../", false},
		{"a/../", false},
		{"a\\", false},
		{"x\x00", false},
	} {
		err := objstore.ValidPrefix(tc.prefix)
		if got := err == nil; got != tc.ok {
			t.Errorf("ValidPrefix(%q) = %v, want ok=%v", tc.prefix, err, tc.ok)
		}
		if err != nil && !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("ValidPrefix(%q) = %v, does not match ErrInvalidKey", tc.prefix, err)
		}
	}
}
