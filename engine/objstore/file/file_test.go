package file_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/akosha/akosha/engine/objstore"
	"github.com/akosha/akosha/engine/objstore/file"
	"github.com/akosha/akosha/engine/objstore/objstoretest"
)

func mustNew(t *testing.T) (*file.Store, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "store")
	s, err := file.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func TestContract(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		s, _ := mustNew(t)
		return s
	})
}

func TestNew(t *testing.T) {
	if _, err := file.New("relative/dir"); err == nil {
		t.Fatal("relative root accepted")
	}
	s, root := mustNew(t)
	fi, err := os.Stat(root)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
		t.Fatalf("root %v, %v; want a 0750 directory", fi, err)
	}
	if got, want := s.URL(), "file://"+filepath.ToSlash(root); got != want {
		t.Fatalf("URL() = %q, want %q", got, want)
	}
	notDir := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := file.New(notDir); err == nil {
		t.Fatal("root that is a file accepted")
	}
}

// TestCrashLeftovers simulates a crash mid-Put: the temp file it left must be invisible.
func TestCrashLeftovers(t *testing.T) {
	s, root := mustNew(t)
	objstoretest.MustPut(t, s, "a/obj", []byte("committed"))
	stray := filepath.Join(root, "a", ".objstore-tmp-123456")
	if err := os.WriteFile(stray, []byte("half a new object"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ".objstore-tmp-999"), []byte("partial"), 0o640); err != nil {
		t.Fatal(err)
	}
	if got := objstoretest.Keys(t, s, ""); !slices.Equal(got, []string{"a/obj"}) {
		t.Fatalf("list = %q, want only a/obj", got)
	}
	if got := objstoretest.MustGet(t, s, "a/obj"); string(got) != "committed" {
		t.Fatalf("get = %q", got)
	}
	// The temp and sidecar names are not addressable as keys.
	for _, key := range []string{"a/.objstore-tmp-123456", ".objstore-tmp-999", "a/.objstore-meta-obj", ".objstore-x/y"} {
		if _, _, err := s.Get(t.Context(), key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("get %q: err = %v, want ErrInvalidKey", key, err)
		}
	}
}

// TestPutLeavesNoTemp checks that successful and failed Puts leave only the object and
// its sidecar on disk.
func TestPutLeavesNoTemp(t *testing.T) {
	s, root := mustNew(t)
	objstoretest.MustPut(t, s, "x/y", []byte("1"))
	r := &errReader{}
	if _, err := s.Put(t.Context(), "x/z", r, objstore.PutOptions{}); err == nil {
		t.Fatal("failing put succeeded")
	}
	entries, err := os.ReadDir(filepath.Join(root, "x"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{".objstore-meta-y", "y"}; !slices.Equal(names, want) {
		t.Fatalf("dir holds %q, want %q", names, want)
	}
	// Delete removes the sidecar and the now-empty directory.
	if err := s.Delete(t.Context(), "x/y"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "x")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty dir left after delete: %v", err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("root removed: %v", err)
	}
}

type errReader struct{ n int }

func (r *errReader) Read(p []byte) (int, error) {
	if r.n > 0 {
		return 0, errors.New("read failed")
	}
	r.n = copy(p, strings.Repeat("z", 100))
	return r.n, nil
}

// TestListOrder checks lexicographic order where it differs from per-directory file-name
// order: '-' and '.' sort before '/'.
func TestListOrder(t *testing.T) {
	s, _ := mustNew(t)
	keys := []string{"a/b", "a-b", "a.b", "a/a", "a0", "a/b-c/d", "a/b.c", "a/b0"}
	for _, k := range keys {
		objstoretest.MustPut(t, s, k, []byte(k))
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if got := objstoretest.Keys(t, s, ""); !slices.Equal(got, want) {
		t.Fatalf("list = %q, want %q", got, want)
	}
}

// TestMismatchedSidecar checks that metadata written for another version of an object
// (as a crash between the sidecar and object renames leaves it) is not reported.
func TestMismatchedSidecar(t *testing.T) {
	s, root := mustNew(t)
	if _, err := s.Put(t.Context(), "k", strings.NewReader("v1"), objstore.PutOptions{Metadata: map[string]string{"sha256": "one"}}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "k"), []byte("other bytes"), 0o640); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stat(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Metadata) != 0 {
		t.Fatalf("metadata of another version reported: %v", st.Metadata)
	}
}

// TestPutDeleteRace runs Puts and Deletes in a shared directory: a Delete removing a
// directory it emptied must not make a concurrent Put fail.
func TestPutDeleteRace(t *testing.T) {
	s, _ := mustNew(t)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 25 {
				key := fmt.Sprintf("r/s/%d-%d", i, j)
				if _, err := s.Put(t.Context(), key, strings.NewReader(key), objstore.PutOptions{}); err != nil {
					t.Errorf("put %s: %v", key, err)
					return
				}
				if err := s.Delete(t.Context(), key); err != nil {
					t.Errorf("delete %s: %v", key, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := objstoretest.Keys(t, s, ""); len(got) != 0 {
		t.Fatalf("list = %q, want empty", got)
	}
}
