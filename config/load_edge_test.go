package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVarExpansion(t *testing.T) {
	setup(t)
	t.Setenv("AKOSHA_TEST_SET", "x")
	os.Unsetenv("AKOSHA_TEST_UNSET")
	for _, tc := range []struct{ yaml, want, err string }{
		{"cache:\n  host: \"${AKOSHA_TEST_SET}\"\n", "x", ""},
		{"cache:\n  host: \"${AKOSHA_TEST_UNSET:-fallback}\"\n", "fallback", ""},
		{"cache:\n  host: \"${AKOSHA_TEST_SET:-fallback}\"\n", "x", ""},
		{"cache:\n  host: \"${AKOSHA_TEST_UNSET}\"\n", "", "t.yaml:2: cache.host: environment variable AKOSHA_TEST_UNSET is not set"},
	} {
		c, err := Parse("t.yaml", []byte(tc.yaml))
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err = %v, want %q", tc.yaml, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.yaml, err)
		case c.Cache.Host != tc.want:
			t.Errorf("%q: host = %q, want %q", tc.yaml, c.Cache.Host, tc.want)
		}
	}
}

func TestFileShapeErrors(t *testing.T) {
	setup(t)
	for _, tc := range []struct{ yaml, want string }{
		{"mode: lite\n---\nmode: bogus\n", "a config file holds one YAML document"},
		{"storage.warm.path: /a\n", `t.yaml:1: key "storage.warm.path" contains a dot`},
	} {
		if _, err := Parse("t.yaml", []byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// TestIsolationSymlinkDotDot: /tmp/l -> checkout/sub, and the path /tmp/l/../data, which the
// OS would resolve inside the checkout, is used as the cleaned path that was checked.
func TestIsolationSymlinkDotDot(t *testing.T) {
	setup(t)
	repo := t.TempDir()
	os.Mkdir(filepath.Join(repo, ".git"), 0o755)
	os.Mkdir(filepath.Join(repo, "sub"), 0o755)
	pinWorkdir(t, repo)
	link := filepath.Join(t.TempDir(), "l")
	if err := os.Symlink(filepath.Join(repo, "sub"), link); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AKOSHA_WARM_PATH", link+"/../data")
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Storage.Warm.Path, filepath.Join(filepath.Dir(link), "data"); got != want {
		t.Fatalf("warm path = %q, want the cleaned %q", got, want)
	}
}

// TestHomeUnderGitIsNotACheckout: a dotfiles repository in $HOME must not make the default
// ~/.akosha data dir "inside the project checkout".
func TestHomeUnderGitIsNotACheckout(t *testing.T) {
	home := setup(t)
	os.Mkdir(filepath.Join(home, ".git"), 0o755)
	wd := filepath.Join(home, "Downloads")
	os.Mkdir(wd, 0o755)
	pinWorkdir(t, wd)
	if _, err := Load(""); err != nil {
		t.Fatalf("default config with a git home: %v", err)
	}
}
