package reliability

import (
	"os"
	"os/exec"
	"testing"
)

// MountTmpfs mounts a tmpfs with options (such as "size=16m") on dir and unmounts it when
// the test ends. Where mounting is not permitted the test is skipped, naming what goes
// untested; while the suite writes docs/RELIABILITY.md ($AKOSHA_RELIABILITY_OUT set) it
// fails instead, so that no case silently drops out of the page.
func MountTmpfs(t testing.TB, dir, options, untested string) {
	t.Helper()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", options, "tmpfs", dir).CombinedOutput()
	if err != nil {
		if os.Getenv(Env) != "" {
			t.Fatalf("cannot mount a tmpfs here (%v: %s), and %s is set: %s would be missing from the page", err, out, Env, untested)
		}
		t.Skipf("cannot mount a tmpfs here (%v: %s): %s is not tested", err, out, untested)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// Remount changes the options of the tmpfs on dir: "remount,size=256m" grows it.
func Remount(t testing.TB, dir, options string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", options, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s with %s: %v: %s", dir, options, err, out)
	}
}
