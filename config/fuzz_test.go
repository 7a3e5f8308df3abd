package config

import (
	"os"
	"reflect"
	"testing"
)

// FuzzParse feeds arbitrary YAML to the config loader (with the shipped files as seeds):
// it must not panic, must refuse with a message, and must decide the same way twice. The
// seed corpus is in testdata/fuzz/FuzzParse, beside the shipped files added here.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"lite.yaml", "staging.yaml", "production.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("storage:\n  warm:\n    path: [1, 2]\n"))
	f.Add([]byte("shard:\n  count: -1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c1, err1 := Parse("fuzz.yaml", data)
		c2, err2 := Parse("fuzz.yaml", data)
		if (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() {
			t.Fatalf("two parses of the same file disagree: %v / %v", err1, err2)
		}
		if err1 != nil {
			if err1.Error() == "" {
				t.Fatal("refused without a message")
			}
			return
		}
		if !reflect.DeepEqual(c1, c2) {
			t.Fatal("two parses of the same file give different configs")
		}
		// What `config show` lists of an accepted config: every setting, with a source.
		for _, s := range c1.Settings() {
			if s.Key == "" || s.Source == "" {
				t.Fatalf("setting %+v without a key or a source", s)
			}
		}
	})
}
