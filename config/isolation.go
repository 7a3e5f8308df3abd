package config

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/akosha/akosha/internal/fsutil"
)

// getwd returns the directory whose git checkout data must stay out of.
// Tests replace it to pin the checkout.
var getwd = os.Getwd

const isolationHint = "use ~/.akosha/... or set AKOSHA_ALLOW_PROJECT_PATHS=true"

// checkIsolation enforces the guide's rule that data never goes into the
// project directory: every data path (cold.path only for an enabled file
// backend) must be absolute and must not lie inside the git checkout that
// contains the working directory. If the working directory is unknown or
// not in a checkout, only the absolute-path rule applies.
func (c *Config) checkIsolation(ch *checker) {
	if c.AllowProjectPaths {
		return
	}
	root := ""
	if wd, err := getwd(); err == nil {
		root = findCheckout(wd)
	}
	cold := c.Storage.Cold
	dataDirBad := false
	for _, f := range c.fields() {
		if f.path != "data" || f.key == "storage.cold.path" && (!cold.Enabled || cold.Backend != "file") {
			continue
		}
		if dataDirBad && f.derive != "" && c.Source(f.key) == "default" {
			continue // already reported through data_dir
		}
		p := f.v.String()
		switch {
		case !filepath.IsAbs(p):
			ch.fail(f.key, "%q is a relative path: data paths must be absolute so data is never written inside the project checkout; %s", p, isolationHint)
		case root != "" && (fsutil.Within(filepath.Clean(p), root) || fsutil.Within(fsutil.EvalExisting(p), root)):
			ch.fail(f.key, "%q: data must not be written inside the project checkout %s; %s", p, root, isolationHint)
		default:
			continue
		}
		dataDirBad = dataDirBad || f.key == "data_dir"
	}
}

// findCheckout returns the nearest directory at or above dir, symlinks
// resolved, that holds a .git entry and is not the home directory, or "" if
// there is none.
func findCheckout(dir string) string {
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		dir = r
	}
	home, _ := os.UserHomeDir()
	if r, err := filepath.EvalSymlinks(home); err == nil {
		home = r
	}
	for {
		// A home directory under git (a dotfiles repository) is not a project:
		// the default data dir ~/.akosha lives there.
		if _, err := os.Lstat(filepath.Join(dir, ".git")); err == nil && dir != home {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// DataPath resolves a data path given on the command line (flag names it in errors):
// "~" is expanded and a relative path taken from the working directory, and, unless
// AllowProjectPaths is set, a path inside the project checkout is refused, as for the
// configured data paths.
func (c *Config) DataPath(flag, p string) (string, error) {
	p, err := expandHome(p)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	if p, err = filepath.Abs(p); err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	if c.AllowProjectPaths {
		return p, nil
	}
	if wd, err := getwd(); err == nil {
		if root := findCheckout(wd); root != "" && (fsutil.Within(p, root) || fsutil.Within(fsutil.EvalExisting(p), root)) {
			return "", fmt.Errorf("%s %q: data must not be written inside the project checkout %s; %s", flag, p, root, isolationHint)
		}
	}
	return p, nil
}
