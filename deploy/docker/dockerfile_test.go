// Package docker holds the worker's Dockerfile. No Docker engine runs where the tests
// do, so the image is not built here: this test reads the Dockerfile and checks it against
// the repository — the Go version, the Makefile's build, the ports and paths of the
// configuration, the files it copies.
package docker

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/akosha/akosha/config"
)

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDockerfileMatchesRepository(t *testing.T) {
	df := read(t, "Dockerfile")
	// The build image's Go is go.mod's.
	gomod := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(read(t, "../../go.mod"))
	if gomod == nil || !strings.Contains(df, "FROM golang:"+gomod[1]+"-") {
		t.Errorf("the build stage is not on go %v", gomod)
	}
	// The Makefile's build: cgo on, the same package.
	mk := read(t, "../../Makefile")
	if !strings.Contains(mk, "export CGO_ENABLED := 1") || !strings.Contains(mk, "build -o $(BIN) ./cmd/akosha") {
		t.Fatal("the Makefile's build changed: update the Dockerfile and this test")
	}
	if !regexp.MustCompile(`RUN CGO_ENABLED=1 go build .* ./cmd/akosha`).MatchString(df) {
		t.Error("the Dockerfile does not build ./cmd/akosha with cgo, as make build does")
	}
	// Ports: the configuration's defaults.
	cfg := config.Default()
	api := cfg.API.Addr[strings.LastIndex(cfg.API.Addr, ":")+1:]
	if want := "EXPOSE " + api + " " + strconv.Itoa(cfg.Monitoring.PrometheusPort); !strings.Contains(df, want) {
		t.Errorf("want %q", want)
	}
	// Non-root, owning the data directories; the health check without curl.
	for _, want := range []string{"USER 1000:1000", "chown -R 1000:1000 /data/akosha", `CMD ["akosha", "health"]`, `ENTRYPOINT ["akosha"]`,
		"AKOSHA_HOME=/data/akosha", "TMPDIR=/data/akosha/tmp"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	for _, d := range []string{"hot", "warm", "wal", "cold", "tmp"} {
		if !strings.Contains(df, "/data/akosha/"+d) {
			t.Errorf("Dockerfile does not create /data/akosha/%s", d)
		}
	}
	// What it copies exists.
	for _, m := range regexp.MustCompile(`(?m)^COPY (?:--from=\S+ )?(\S+)`).FindAllStringSubmatch(df, -1) {
		if strings.HasPrefix(m[0], "COPY --from") {
			continue
		}
		if _, err := os.Stat(filepath.Join("../..", m[1])); err != nil {
			t.Errorf("COPY %s: %v", m[1], err)
		}
	}
	// The shipped production config's data paths are under the image's volume.
	t.Setenv("AKOSHA_API_TOKEN", "test-token-0123456789")
	prod, err := config.Load("../../config/production.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]string{"data_dir": prod.DataDir, "hot": prod.Storage.Hot.Path, "warm": prod.Storage.Warm.Path,
		"wal": prod.Storage.Hot.WALPath, "backups": prod.Backup.Path} {
		if !strings.HasPrefix(p, "/data/akosha/") {
			t.Errorf("production %s path %s is not under the image's /data/akosha volume", name, p)
		}
	}
}
