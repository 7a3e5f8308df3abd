package check

// The compose files in deploy/compose, loaded with compose-go (what `docker compose` uses)
// and checked against the repository: the Dockerfile, the configuration the workers run
// with, the alert rules, the Prometheus and Grafana files they mount. No Docker engine runs
// where the tests do, so nothing is started.

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

const (
	// repoRoot is the repository's root, from this directory.
	repoRoot = "../.."
	// akoshaDockerfile builds the akosha image; relative to repoRoot.
	akoshaDockerfile = "deploy/docker/Dockerfile"
	// imageConfigDir is where the Dockerfile copies config/ (COPY config/ /etc/akosha/).
	imageConfigDir = "/etc/akosha/"
	// defaultGracePeriod is worker.DefaultGracePeriod: how long a worker lets running
	// activities and requests finish after SIGTERM without --grace-period.
	defaultGracePeriod = 30 * time.Second
)

// composeFile is a compose file and the variables it requires (${VAR:?...}), with
// placeholder values.
type composeFile struct {
	project string
	path    string
	env     map[string]string
}

var (
	devCompose  = composeFile{project: "akosha-dev", path: "../compose/docker-compose.dev.yml"}
	prodCompose = composeFile{project: "akosha", path: "../compose/docker-compose.prod.yml", env: map[string]string{
		"AKOSHA_API_TOKEN":       "test-api-token",
		"AWS_ACCESS_KEY_ID":      "test-access-key-id",
		"AWS_SECRET_ACCESS_KEY":  "test-secret-access-key",
		"POSTGRES_PASSWORD":      "test-postgres-password",
		"GRAFANA_ADMIN_PASSWORD": "test-grafana-password",
	}}
	composeFiles = []composeFile{devCompose, prodCompose}
)

// loadCompose loads cf as `docker compose -p <project> -f <path>` would with exactly env
// as the environment (none of the test process's).
func loadCompose(cf composeFile, env map[string]string, opts ...func(*loader.Options)) (*types.Project, error) {
	abs, err := filepath.Abs(cf.path)
	if err != nil {
		return nil, err
	}
	opts = append(opts, func(o *loader.Options) { o.SetProjectName(cf.project, true) })
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs}},
		Environment: maps.Clone(env),
	}, opts...)
}

func mustLoadCompose(t *testing.T, cf composeFile) *types.Project {
	t.Helper()
	p, err := loadCompose(cf, cf.env)
	if err != nil {
		t.Fatalf("load %s: %v", cf.path, err)
	}
	return p
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// repoPath returns the absolute path of rel, a path relative to the repository's root.
func repoPath(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sortedServices(p *types.Project) []types.ServiceConfig {
	var out []types.ServiceConfig
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		out = append(out, p.Services[name])
	}
	return out
}

// akoshaImages returns the images the project builds from the akosha Dockerfile.
func akoshaImages(t *testing.T, p *types.Project) map[string]bool {
	t.Helper()
	images := map[string]bool{}
	for _, s := range p.Services {
		if s.Build != nil && filepath.Join(s.Build.Context, s.Build.Dockerfile) == repoPath(t, akoshaDockerfile) {
			images[s.Image] = true
		}
	}
	if len(images) == 0 {
		t.Fatalf("project %s builds no image from %s", p.Name, akoshaDockerfile)
	}
	return images
}

// akoshaServices returns the services that run the akosha binary: the akosha image with
// its entrypoint.
func akoshaServices(t *testing.T, p *types.Project) []types.ServiceConfig {
	t.Helper()
	images := akoshaImages(t, p)
	var out []types.ServiceConfig
	for _, s := range sortedServices(p) {
		if images[s.Image] && len(s.Entrypoint) == 0 {
			out = append(out, s)
		}
	}
	return out
}

// workers returns the services running a worker: `akosha worker` or `akosha dev`.
func workers(t *testing.T, p *types.Project) []types.ServiceConfig {
	t.Helper()
	var out []types.ServiceConfig
	for _, s := range akoshaServices(t, p) {
		if len(s.Command) > 0 && (s.Command[0] == "worker" || s.Command[0] == "dev") {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		t.Fatalf("project %s runs no akosha worker", p.Name)
	}
	return out
}

func envValue(s types.ServiceConfig, key string) string {
	if v := s.Environment[key]; v != nil {
		return *v
	}
	return ""
}

// flagValue returns the value of --name in cmd ("--name v" or "--name=v").
func flagValue(cmd []string, name string) (string, bool) {
	for i, a := range cmd {
		if a == "--"+name && i+1 < len(cmd) {
			return cmd[i+1], true
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// workerSettings is what a worker service listens on and writes to, resolved as
// config.Load would: the defaults, the file AKOSHA_CONFIG names, then the environment;
// unset paths derive from data_dir.
type workerSettings struct {
	apiPort, metricsPort uint32
	hot, wal, warm       string
	gracePeriod          time.Duration
}

// akoshaConfig holds the settings of config.Config these tests need, as a config file
// spells them.
type akoshaConfig struct {
	DataDir string `json:"data_dir"`
	Storage struct {
		Hot struct {
			Path    string `json:"path"`
			WALPath string `json:"wal_path"`
		} `json:"hot"`
		Warm struct {
			Path string `json:"path"`
		} `json:"warm"`
	} `json:"storage"`
	API struct {
		Addr string `json:"addr"`
	} `json:"api"`
	Monitoring struct {
		PrometheusPort int `json:"prometheus_port"`
	} `json:"monitoring"`
}

func resolveWorker(t *testing.T, s types.ServiceConfig) workerSettings {
	t.Helper()
	if df := string(readFile(t, repoPath(t, akoshaDockerfile))); !strings.Contains(df, "COPY config/ "+imageConfigDir) {
		t.Fatalf("%s no longer copies config/ to %s: update this test", akoshaDockerfile, imageConfigDir)
	}
	var c akoshaConfig // config.Default's values
	c.DataDir, c.API.Addr, c.Monitoring.PrometheusPort = "~/.akosha/dev", ":8682", 9090
	if f := envValue(s, "AKOSHA_CONFIG"); f != "" {
		rel, ok := strings.CutPrefix(f, imageConfigDir)
		if !ok {
			t.Fatalf("service %s: AKOSHA_CONFIG=%s is not a file the image ships (under %s)", s.Name, f, imageConfigDir)
		}
		if err := yaml.Unmarshal(readFile(t, repoPath(t, filepath.Join("config", rel))), &c); err != nil {
			t.Fatalf("service %s: config/%s: %v", s.Name, rel, err)
		}
	}
	for env, dst := range map[string]*string{
		"AKOSHA_HOME": &c.DataDir, "AKOSHA_HOT_PATH": &c.Storage.Hot.Path, "AKOSHA_WAL_PATH": &c.Storage.Hot.WALPath,
		"AKOSHA_WARM_PATH": &c.Storage.Warm.Path, "AKOSHA_API_ADDR": &c.API.Addr,
	} {
		if v := envValue(s, env); v != "" {
			*dst = v
		}
	}
	if v := envValue(s, "AKOSHA_PROMETHEUS_PORT"); v != "" {
		port, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("service %s: AKOSHA_PROMETHEUS_PORT=%q: %v", s.Name, v, err)
		}
		c.Monitoring.PrometheusPort = port
	}
	derive := func(p, sub string) string {
		if p == "" {
			p = path.Join(c.DataDir, sub)
		}
		if !path.IsAbs(p) {
			t.Fatalf("service %s: data path %q is not absolute in the container: set AKOSHA_HOME or the path", s.Name, p)
		}
		return path.Clean(p)
	}
	_, apiPort, err := net.SplitHostPort(c.API.Addr)
	if err != nil {
		t.Fatalf("service %s: api.addr %q: %v", s.Name, c.API.Addr, err)
	}
	w := workerSettings{
		metricsPort: uint32(c.Monitoring.PrometheusPort),
		hot:         derive(c.Storage.Hot.Path, "hot"),
		wal:         derive(c.Storage.Hot.WALPath, "wal"),
		warm:        derive(c.Storage.Warm.Path, "warm"),
		gracePeriod: defaultGracePeriod,
	}
	if p, err := strconv.ParseUint(apiPort, 10, 16); err != nil {
		t.Fatalf("service %s: api.addr %q: %v", s.Name, c.API.Addr, err)
	} else {
		w.apiPort = uint32(p)
	}
	if v, ok := flagValue(s.Command, "grace-period"); ok {
		if w.gracePeriod, err = time.ParseDuration(v); err != nil {
			t.Fatalf("service %s: --grace-period %q: %v", s.Name, v, err)
		}
	}
	return w
}

// imageDirs returns the directories the Dockerfile creates under /data/akosha (owned by
// uid 1000), and /data/akosha itself: a named volume mounted there starts with the
// image's content and ownership.
func imageDirs(t *testing.T) map[string]bool {
	t.Helper()
	df := string(readFile(t, repoPath(t, akoshaDockerfile)))
	m := regexp.MustCompile(`mkdir -p ((?:/data/akosha\S*\s*)+)`).FindStringSubmatch(df)
	if m == nil || !strings.Contains(df, "chown -R 1000:1000 /data/akosha") {
		t.Fatalf("%s no longer creates /data/akosha/... owned by uid 1000: update this test", akoshaDockerfile)
	}
	dirs := map[string]bool{"/data/akosha": true}
	for _, d := range strings.Fields(m[1]) {
		dirs[path.Clean(d)] = true
	}
	return dirs
}

// volumeFor returns the mount of s that holds p: the mount with the longest target that
// is p or a parent of it.
func volumeFor(s types.ServiceConfig, p string) (types.ServiceVolumeConfig, bool) {
	var best types.ServiceVolumeConfig
	found := false
	for _, v := range s.Volumes {
		if (p == v.Target || strings.HasPrefix(p, strings.TrimSuffix(v.Target, "/")+"/")) && len(v.Target) > len(best.Target) {
			best, found = v, true
		}
	}
	return best, found
}

func portSets(s types.ServiceConfig) (published, exposed map[uint32]bool) {
	published, exposed = map[uint32]bool{}, map[uint32]bool{}
	for _, p := range s.Ports {
		if p.Published != "" {
			published[p.Target] = true
		}
		exposed[p.Target] = true
	}
	for _, e := range s.Expose {
		if n, err := strconv.ParseUint(e, 10, 32); err == nil {
			exposed[uint32(n)] = true
		}
	}
	return published, exposed
}

func isAkoshaHealth(test types.HealthCheckTest) bool {
	switch {
	case len(test) >= 3 && test[0] == "CMD":
		return test[1] == "akosha" && test[2] == "health"
	case len(test) == 2 && test[0] == "CMD-SHELL":
		return strings.HasPrefix(test[1], "akosha health")
	}
	return false
}

// TestComposeLoads loads each file with its required variables, and checks that each of
// them is required: loading without it fails and names it.
func TestComposeLoads(t *testing.T) {
	for _, cf := range composeFiles {
		t.Run(filepath.Base(cf.path), func(t *testing.T) {
			p := mustLoadCompose(t, cf)
			if len(p.Services) == 0 {
				t.Fatal("no services")
			}
			for _, v := range slices.Sorted(maps.Keys(cf.env)) {
				env := maps.Clone(cf.env)
				delete(env, v)
				if _, err := loadCompose(cf, env); err == nil || !strings.Contains(err.Error(), v) {
					t.Errorf("loads without %s (error: %v): write ${%s:?set %s}", v, err, v, v)
				}
			}
		})
	}
}

// secretName matches environment variables that hold secrets.
var secretName = regexp.MustCompile(`TOKEN|SECRET|PASSWORD|PWD`)

// TestComposeSecretsComeFromEnvironment: no secret is written in a compose file, each
// is a ${VAR...} reference.
func TestComposeSecretsComeFromEnvironment(t *testing.T) {
	for _, cf := range composeFiles {
		p, err := loadCompose(cf, nil, func(o *loader.Options) { o.SkipInterpolation = true })
		if err != nil {
			t.Fatalf("load %s uninterpolated: %v", cf.path, err)
		}
		for _, s := range sortedServices(p) {
			for _, k := range slices.Sorted(maps.Keys(s.Environment)) {
				if v := s.Environment[k]; secretName.MatchString(k) && v != nil && !strings.HasPrefix(*v, "${") {
					t.Errorf("%s: service %s sets %s to a literal: take it from the environment (${%s:?set %s})", cf.path, s.Name, k, k, k)
				}
			}
		}
	}
}

// TestComposeServices checks every service: builds, images, bind mounts, privileges and
// dependencies.
func TestComposeServices(t *testing.T) {
	root := repoPath(t, ".")
	for _, cf := range composeFiles {
		t.Run(filepath.Base(cf.path), func(t *testing.T) {
			p := mustLoadCompose(t, cf)
			built := map[string]bool{}
			for _, s := range sortedServices(p) {
				if s.Build != nil {
					built[s.Image] = true
				}
			}
			for _, s := range sortedServices(p) {
				if s.Build != nil {
					df := s.Build.Dockerfile
					if !filepath.IsAbs(df) {
						df = filepath.Join(s.Build.Context, df)
					}
					if _, err := os.Stat(df); err != nil {
						t.Errorf("service %s: dockerfile %s (context %s): %v", s.Name, s.Build.Dockerfile, s.Build.Context, err)
					}
				} else if !built[s.Image] {
					// A pulled image is pinned: a tag other than latest, or a digest.
					name := s.Image[strings.LastIndex(s.Image, "/")+1:]
					tag := ""
					if i := strings.LastIndexAny(name, ":@"); i >= 0 {
						tag = name[i+1:]
					}
					if tag == "" || tag == "latest" {
						t.Errorf("service %s: image %q is not pinned to a version", s.Name, s.Image)
					}
				}
				for _, v := range s.Volumes {
					if v.Type != types.VolumeTypeBind {
						continue
					}
					if _, err := os.Stat(v.Source); err != nil {
						t.Errorf("service %s: bind mount source: %v", s.Name, err)
					}
					if rel, err := filepath.Rel(root, v.Source); err != nil || strings.HasPrefix(rel, "..") {
						t.Errorf("service %s: bind mount source %s is outside the repository", s.Name, v.Source)
					}
				}
				if s.Privileged {
					t.Errorf("service %s runs privileged", s.Name)
				}
				for _, dep := range slices.Sorted(maps.Keys(s.DependsOn)) {
					d, ok := p.Services[dep]
					if !ok {
						t.Errorf("service %s depends on %s, which is not a service", s.Name, dep)
						continue
					}
					if s.DependsOn[dep].Condition == types.ServiceConditionHealthy && (d.HealthCheck == nil || d.HealthCheck.Disable) {
						t.Errorf("service %s waits for %s to be healthy, which has no healthcheck", s.Name, dep)
					}
				}
			}
		})
	}
}

// TestComposeWorkers checks each worker against the configuration it runs with: its
// health check, ports, data paths, shutdown time and volume ownership.
func TestComposeWorkers(t *testing.T) {
	owned := imageDirs(t)
	for _, cf := range composeFiles {
		t.Run(filepath.Base(cf.path), func(t *testing.T) {
			p := mustLoadCompose(t, cf)
			for _, s := range workers(t, p) {
				w := resolveWorker(t, s)
				if hc := s.HealthCheck; hc == nil || hc.Disable || !isAkoshaHealth(hc.Test) {
					t.Errorf("service %s: want a healthcheck running `akosha health`", s.Name)
				}
				published, exposed := portSets(s)
				if !published[w.apiPort] {
					t.Errorf("service %s does not publish the API port %d (api.addr)", s.Name, w.apiPort)
				}
				if !exposed[w.metricsPort] {
					t.Errorf("service %s neither publishes nor exposes the metrics port %d (monitoring.prometheus_port)", s.Name, w.metricsPort)
				}
				for _, d := range []struct{ setting, path string }{
					{"storage.hot.path", w.hot}, {"storage.hot.wal_path", w.wal}, {"storage.warm.path", w.warm},
				} {
					if v, ok := volumeFor(s, d.path); !ok || v.Type != types.VolumeTypeVolume {
						t.Errorf("service %s: %s %s is not on a named volume", s.Name, d.setting, d.path)
					}
				}
				if g := s.StopGracePeriod; g == nil || time.Duration(*g) <= w.gracePeriod {
					t.Errorf("service %s: stop_grace_period %v must exceed the worker's grace period %v (or Docker kills it before it checkpoints)",
						s.Name, g, w.gracePeriod)
				}
				// uid 1000 must own every volume it writes: a volume mounted where the image
				// has no directory is created owned by root, unless a one-shot hands it over.
				for _, v := range s.Volumes {
					if v.Type != types.VolumeTypeVolume || owned[path.Clean(v.Target)] || handedOver(p, s, v) {
						continue
					}
					t.Errorf("service %s: volume %s at %s is not a directory of the image (%v), so root owns it; "+
						"add a one-shot that chowns it to 1000 and depends_on it with condition service_completed_successfully",
						s.Name, v.Source, v.Target, slices.Sorted(maps.Keys(owned)))
				}
			}
		})
	}
}

// handedOver reports whether a service s waits for (service_completed_successfully) runs
// as root with volume v mounted at the same place and chowns it.
func handedOver(p *types.Project, s types.ServiceConfig, v types.ServiceVolumeConfig) bool {
	for name, dep := range s.DependsOn {
		oneShot, ok := p.Services[name]
		if !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully || !slices.Contains([]string{"0", "0:0", "root"}, oneShot.User) {
			continue
		}
		script := strings.Join(append(slices.Clone(oneShot.Entrypoint), oneShot.Command...), " ")
		if !regexp.MustCompile(`chown (-R )?1000:1000 .*` + regexp.QuoteMeta(v.Target) + `(\s|$)`).MatchString(script) {
			continue
		}
		for _, iv := range oneShot.Volumes {
			if iv.Type == v.Type && iv.Source == v.Source && iv.Target == v.Target {
				return true
			}
		}
	}
	return false
}

// TestComposeDevReachable: `akosha dev` listens on every interface of its container, and
// the Temporal frontend and Web UI ports are published.
func TestComposeDevReachable(t *testing.T) {
	p := mustLoadCompose(t, devCompose)
	for _, s := range workers(t, p) {
		if s.Command[0] != "dev" {
			continue
		}
		ip, _ := flagValue(s.Command, "ip")
		if parsed := net.ParseIP(ip); parsed == nil || !parsed.IsUnspecified() {
			t.Errorf("service %s: `akosha dev --ip %q` listens where published ports do not reach: want --ip 0.0.0.0", s.Name, ip)
		}
		published, _ := portSets(s)
		for _, port := range []struct {
			flag string
			def  uint32
		}{{"temporal-port", 7233}, {"ui-port", 8233}} {
			want := port.def
			if v, ok := flagValue(s.Command, port.flag); ok {
				n, err := strconv.ParseUint(v, 10, 16)
				if err != nil {
					t.Fatalf("service %s: --%s %q: %v", s.Name, port.flag, v, err)
				}
				want = uint32(n)
			}
			if !published[want] {
				t.Errorf("service %s does not publish --%s %d", s.Name, port.flag, want)
			}
		}
	}
}

// TestComposeProdStorage: the databases (hot and warm) and the WAL are on two different
// named volumes, and no data directory is a volume's mount point: an in-place restore and
// a DR switch rename those directories, which a mount point refuses (EBUSY).
func TestComposeProdStorage(t *testing.T) {
	p := mustLoadCompose(t, prodCompose)
	for _, s := range workers(t, p) {
		w := resolveWorker(t, s)
		volume := func(setting, dir string) string {
			v, ok := volumeFor(s, dir)
			if !ok || v.Type != types.VolumeTypeVolume || v.Source == "" {
				t.Errorf("service %s: %s %s is not on a named volume", s.Name, setting, dir)
				return ""
			}
			if path.Clean(v.Target) == dir {
				t.Errorf("service %s: %s %s is the mount point of volume %s: mount the volume above it (a restore renames the directory)", s.Name, setting, dir, v.Source)
			}
			return v.Source
		}
		hot, warm, wal := volume("storage.hot.path", w.hot), volume("storage.warm.path", w.warm), volume("storage.hot.wal_path", w.wal)
		if warm != "" && warm == wal {
			t.Errorf("service %s: warm and WAL share volume %s: the WAL belongs on its own disk", s.Name, warm)
		}
		if hot != warm {
			t.Errorf("service %s: hot is on volume %s, warm on %s: the databases belong together on the data disk", s.Name, hot, warm)
		}
	}
}

// TestComposeProdTemporal: every akosha container reaches Temporal at a service of the
// project, and `akosha schedule apply` runs once that service is healthy.
func TestComposeProdTemporal(t *testing.T) {
	p := mustLoadCompose(t, prodCompose)
	applies := 0
	for _, s := range akoshaServices(t, p) {
		addr := envValue(s, "TEMPORAL_ADDRESS")
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			t.Errorf("service %s: TEMPORAL_ADDRESS %q: %v", s.Name, addr, err)
			continue
		}
		if _, ok := p.Services[host]; !ok {
			t.Errorf("service %s: TEMPORAL_ADDRESS %s is not a service of the project", s.Name, addr)
		}
		if slices.Equal(s.Command, []string{"schedule", "apply"}) {
			applies++
			if dep, ok := s.DependsOn[host]; !ok || dep.Condition != types.ServiceConditionHealthy {
				t.Errorf("service %s (schedule apply) must depend on %s with condition service_healthy", s.Name, host)
			}
		}
	}
	if applies != 1 {
		t.Errorf("%d services run `akosha schedule apply`, want 1", applies)
	}
}

// prometheusConfig is the part of a Prometheus configuration these tests read.
type prometheusConfig struct {
	RuleFiles     []string `json:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `json:"job_name"`
		StaticConfigs []struct {
			Targets []string `json:"targets"`
		} `json:"static_configs"`
	} `json:"scrape_configs"`
}

// serviceWithImage returns the one service running image repo (any tag).
func serviceWithImage(t *testing.T, p *types.Project, repo string) types.ServiceConfig {
	t.Helper()
	var found []types.ServiceConfig
	for _, s := range sortedServices(p) {
		if strings.HasPrefix(s.Image, repo+":") {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s service, found %d", repo, len(found))
	}
	return found[0]
}

// bindTarget returns where s mounts the repository file rel.
func bindTarget(t *testing.T, s types.ServiceConfig, rel string) string {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Source == repoPath(t, rel) {
			return v.Target
		}
	}
	t.Fatalf("service %s does not mount %s", s.Name, rel)
	return ""
}

// bindSource returns the host file s mounts at target.
func bindSource(t *testing.T, s types.ServiceConfig, target string) string {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == target {
			return v.Source
		}
	}
	t.Fatalf("service %s mounts nothing at %s", s.Name, target)
	return ""
}

// TestComposeProdPrometheus: Prometheus loads our rules and scrapes every worker's
// metrics port under the job name the rules select.
func TestComposeProdPrometheus(t *testing.T) {
	p := mustLoadCompose(t, prodCompose)
	prom := serviceWithImage(t, p, "prom/prometheus")
	configPath, ok := "", false
	for _, a := range prom.Command {
		if v, found := strings.CutPrefix(a, "--config.file="); found {
			configPath, ok = v, true
		}
	}
	if !ok {
		t.Fatalf("service %s: no --config.file in its command %q", prom.Name, prom.Command)
	}
	configFile := bindSource(t, prom, configPath)
	var cfg prometheusConfig
	if err := yaml.Unmarshal(readFile(t, configFile), &cfg); err != nil {
		t.Fatalf("%s: %v", configFile, err)
	}

	// The rules are mounted where rule_files finds them.
	rules := bindTarget(t, prom, "deploy/prometheus/rules.yaml")
	if !slices.ContainsFunc(cfg.RuleFiles, func(pattern string) bool { ok, _ := path.Match(pattern, rules); return ok }) {
		t.Errorf("rules.yaml is mounted at %s, which rule_files %q does not match", rules, cfg.RuleFiles)
	}

	// The jobs the rules select (up{job="akosha"}) are scrape jobs, and each worker is a
	// target of them at its metrics port.
	targets := map[string][]string{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets[sc.JobName] = append(targets[sc.JobName], st.Targets...)
		}
	}
	jobs := map[string]bool{}
	for _, m := range regexp.MustCompile(`job="([^"]+)"`).FindAllStringSubmatch(string(readFile(t, repoPath(t, "deploy/prometheus/rules.yaml"))), -1) {
		jobs[m[1]] = true
	}
	if len(jobs) == 0 {
		t.Fatal("rules.yaml selects no job: update this test")
	}
	for job := range jobs {
		if _, ok := targets[job]; !ok {
			t.Errorf("rules.yaml selects job %q, which %s does not scrape", job, configFile)
			continue
		}
		for _, s := range workers(t, p) {
			want := net.JoinHostPort(s.Name, strconv.Itoa(int(resolveWorker(t, s).metricsPort)))
			if !slices.Contains(targets[job], want) {
				t.Errorf("job %s does not scrape worker %s at %s (targets %q)", job, s.Name, want, targets[job])
			}
		}
		for _, target := range targets[job] {
			host, _, err := net.SplitHostPort(target)
			if _, ok := p.Services[host]; err != nil || !ok {
				t.Errorf("job %s: target %s is not a service of the project", job, target)
			}
		}
	}

	t.Run("promtool", func(t *testing.T) {
		if _, err := exec.LookPath("promtool"); err != nil {
			t.Skip("promtool not installed (apt-get install prometheus)")
		}
		if out, err := exec.Command("promtool", "check", "config", "--syntax-only", configFile).CombinedOutput(); err != nil {
			t.Errorf("promtool check config %s: %v\n%s", configFile, err, out)
		}
	})
}

// TestComposeProdGrafana: Grafana's data source is the project's Prometheus and its
// dashboard provider loads the mounted akosha-warm.json.
func TestComposeProdGrafana(t *testing.T) {
	p := mustLoadCompose(t, prodCompose)
	grafana := serviceWithImage(t, p, "grafana/grafana")
	prom := serviceWithImage(t, p, "prom/prometheus")

	var datasources, providers int
	for _, v := range grafana.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		switch path.Dir(v.Target) {
		case "/etc/grafana/provisioning/datasources":
			var f struct {
				Datasources []struct{ Type, URL string }
			}
			if err := yaml.Unmarshal(readFile(t, v.Source), &f); err != nil {
				t.Fatalf("%s: %v", v.Source, err)
			}
			for _, ds := range f.Datasources {
				datasources++
				if want := "http://" + prom.Name + ":9090"; ds.Type != "prometheus" || ds.URL != want {
					t.Errorf("%s: data source %s %s, want prometheus %s", v.Source, ds.Type, ds.URL, want)
				}
			}
		case "/etc/grafana/provisioning/dashboards":
			var f struct {
				Providers []struct {
					Type    string
					Options struct{ Path string }
				}
			}
			if err := yaml.Unmarshal(readFile(t, v.Source), &f); err != nil {
				t.Fatalf("%s: %v", v.Source, err)
			}
			dashboard := bindTarget(t, grafana, "deploy/grafana/akosha-warm.json")
			for _, pr := range f.Providers {
				providers++
				if pr.Type != "file" || pr.Options.Path != path.Dir(dashboard) {
					t.Errorf("%s: provider %s %s does not load the dashboard mounted at %s", v.Source, pr.Type, pr.Options.Path, dashboard)
				}
			}
		}
	}
	if datasources == 0 || providers == 0 {
		t.Errorf("service %s: %d data sources and %d dashboard providers provisioned, want at least one of each", grafana.Name, datasources, providers)
	}
	var dashboard struct{ UID string }
	if err := json.Unmarshal(readFile(t, repoPath(t, "deploy/grafana/akosha-warm.json")), &dashboard); err != nil || dashboard.UID == "" {
		t.Errorf("deploy/grafana/akosha-warm.json: no dashboard uid (%v)", err)
	}
}

// TestComposeProdSearchAttributes: a one-shot registers the runbooks' search attributes
// (workflows.SearchAttributeTypes) with their names and types.
func TestComposeProdSearchAttributes(t *testing.T) {
	consts := map[string]string{}
	for _, m := range regexp.MustCompile(`(Search\w+Name)\s*=\s*"(\w+)"`).FindAllStringSubmatch(string(readFile(t, repoPath(t, "activities/dr.go"))), -1) {
		consts[m[1]] = m[2]
	}
	cliType := map[string]string{"Keyword": "Keyword", "Int64": "Int", "Float64": "Double", "Bool": "Bool", "Time": "Datetime", "String": "Text", "KeywordList": "KeywordList"}
	want := map[string]string{}
	for _, m := range regexp.MustCompile(`temporal\.NewSearchAttributeKey(\w+)\(activities\.(\w+)\)`).FindAllStringSubmatch(string(readFile(t, repoPath(t, "workflows/search.go"))), -1) {
		want[consts[m[2]]] = cliType[m[1]]
	}
	if len(want) == 0 || want[""] != "" {
		t.Fatalf("cannot read the search attributes from workflows/search.go and activities/dr.go (%v): update this test", want)
	}
	p := mustLoadCompose(t, prodCompose)
	var script string
	for _, s := range sortedServices(p) {
		if cmd := strings.Join(append(slices.Clone(s.Entrypoint), s.Command...), " "); strings.Contains(cmd, "search-attribute create") {
			script = cmd
		}
	}
	if script == "" {
		t.Fatal("no service runs `temporal operator search-attribute create`")
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if !strings.Contains(script, "--name "+name+" --type "+want[name]) {
			t.Errorf("the search attributes one-shot does not create %s of type %s: %s", name, want[name], script)
		}
	}
}
