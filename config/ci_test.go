package config

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The forks' CI workflow runs the storage-isolation check and `make test`, as .ci/run
// does; the check passes on the shipped configs and fails on a relative data path.
func TestForkCI(t *testing.T) {
	b, err := os.ReadFile("../.github/workflows/ci.yml")
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Jobs map[string]struct {
			Steps []struct {
				Uses string            `yaml:"uses"`
				Run  string            `yaml:"run"`
				With map[string]string `yaml:"with"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(b, &wf); err != nil {
		t.Fatal(err)
	}
	var runs []string
	goMod := false
	for _, s := range wf.Jobs["test"].Steps {
		runs = append(runs, s.Run)
		goMod = goMod || s.With["go-version-file"] == "go.mod"
	}
	ci, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ci), "make test") || !strings.Contains(strings.Join(runs, "\n"), "make test") || !goMod ||
		!strings.Contains(strings.Join(runs, "\n"), ".github/scripts/verify-storage-isolation.sh") {
		t.Fatalf("workflow steps %q (go from go.mod: %v)", runs, goMod)
	}
	script := "../.github/scripts/verify-storage-isolation.sh"
	if out, err := exec.Command("bash", script).CombinedOutput(); err != nil {
		t.Fatalf("the shipped configs: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("storage:\n  warm:\n    path: \"./data/warm\"\n  legacy_warm_path: \"./data/warm\"\n"), 0o644)
	out, err := exec.Command("bash", script, bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is relative") || strings.Count(string(out), "./data/warm") != 1 {
		t.Fatalf("a relative warm path: %v\n%s", err, out)
	}
}
