package check

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const k8sDir = "../k8s"

// newObject returns an empty typed object for a manifest's apiVersion and kind: every
// kind the manifests may use. Anything else is an error, not a pass.
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		return &corev1.Namespace{}, nil
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1 Secret":
		return &corev1.Secret{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "batch/v1 Job":
		return &batchv1.Job{}, nil
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "storage.k8s.io/v1 StorageClass":
		return &storagev1.StorageClass{}, nil
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}, nil
	case "monitoring.coreos.com/v1 PrometheusRule":
		return &monitoringv1.PrometheusRule{}, nil
	case "kustomize.config.k8s.io/v1beta1 Kustomization", "kustomize.config.k8s.io/v1alpha1 Component":
		return &kusttypes.Kustomization{}, nil
	}
	return nil, fmt.Errorf("apiVersion %q kind %q: not a kind these manifests use (add it to newObject)", apiVersion, kind)
}

// decodeStrict decodes one YAML document into its k8s.io/api (or kustomize, or Prometheus
// Operator) type: an unknown or duplicated field is an error.
func decodeStrict(doc []byte) (any, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return nil, err
	}
	obj, err := newObject(head.APIVersion, head.Kind)
	if err != nil {
		return nil, err
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", head.Kind, err)
	}
	return obj, nil
}

// documents splits a YAML stream into its non-empty documents.
func documents(t *testing.T, data []byte) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		d, err := r.Read()
		if err != nil {
			break
		}
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

// jsonPatchOp is one operation of a JSON 6902 patch file.
type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
	From  string `json:"from,omitempty"`
}

// TestManifestsDecodeStrictly decodes every YAML file under deploy/k8s into its type:
// the manifests into k8s.io/api (and the Prometheus Operator's) types, the kustomization
// files into kustomize's, the JSON patches into operations. Unknown fields fail.
func TestManifestsDecodeStrictly(t *testing.T) {
	n := 0
	err := filepath.WalkDir(k8sDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if isJSONPatch(data) {
			var ops []jsonPatchOp
			if err := yaml.UnmarshalStrict(data, &ops); err != nil {
				t.Errorf("%s: %v", p, err)
			}
			for i, op := range ops {
				if !slices.Contains([]string{"add", "remove", "replace", "move", "copy", "test"}, op.Op) || !strings.HasPrefix(op.Path, "/") {
					t.Errorf("%s: operation %d: op %q path %q", p, i, op.Op, op.Path)
				}
			}
			n++
			return nil
		}
		for i, doc := range documents(t, data) {
			if _, err := decodeStrict(doc); err != nil {
				t.Errorf("%s, document %d: %v", p, i+1, err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 15 {
		t.Fatalf("decoded %d documents under %s: the manifests are missing", n, k8sDir)
	}
}

// TestDecodeStrictRejectsUnknownFields shows the check above can fail.
func TestDecodeStrictRejectsUnknownFields(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: apps/v1\nkind: StatefulSet\nspec:\n  replica: 3\n",
		"apiVersion: v1\nkind: Service\nspec:\n  ports:\n    - name: api\n      prot: 8682\n",
		"apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nspec:\n  endpoint: []\n",
		"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresource: [a.yaml]\n",
		"apiVersion: v1\nkind: Pod\n",
	} {
		if _, err := decodeStrict([]byte(doc)); err == nil {
			t.Errorf("decoded without error:\n%s", doc)
		}
	}
}

// overlay is the output of `kustomize build` of one overlay, decoded.
type overlay struct {
	name, namespace string
	sts             *appsv1.StatefulSet
	job             *batchv1.Job
	pdb             *policyv1.PodDisruptionBudget
	services        []*corev1.Service
	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	namespaces      []string
	serviceMonitors []*monitoringv1.ServiceMonitor
	rules           []*monitoringv1.PrometheusRule
	objects         int
}

// build runs kustomize on an overlay (sigs.k8s.io/kustomize/api, as `kubectl kustomize`
// does) and decodes every resource strictly.
func build(t *testing.T, name string) *overlay {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(k8sDir, "overlays", name))
	if err != nil {
		t.Fatalf("kustomize build overlays/%s: %v", name, err)
	}
	o := &overlay{name: name, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, r := range m.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		obj, err := decodeStrict(doc)
		if err != nil {
			t.Fatalf("overlays/%s: %s: %v", name, r.CurId(), err)
		}
		o.objects++
		switch v := obj.(type) {
		case *appsv1.StatefulSet:
			if o.sts != nil {
				t.Fatalf("overlays/%s: two StatefulSets", name)
			}
			o.sts = v
		case *batchv1.Job:
			o.job = v
		case *policyv1.PodDisruptionBudget:
			o.pdb = v
		case *corev1.Service:
			o.services = append(o.services, v)
		case *corev1.ConfigMap:
			o.configMaps[v.Name] = v
		case *corev1.Secret:
			o.secrets[v.Name] = v
		case *corev1.Namespace:
			o.namespaces = append(o.namespaces, v.Name)
		case *monitoringv1.ServiceMonitor:
			o.serviceMonitors = append(o.serviceMonitors, v)
		case *monitoringv1.PrometheusRule:
			o.rules = append(o.rules, v)
		default:
			t.Fatalf("overlays/%s: unexpected %T", name, obj)
		}
		if ns := r.GetNamespace(); r.GetKind() != "Namespace" {
			if o.namespace == "" {
				o.namespace = ns
			}
			if ns != o.namespace {
				t.Errorf("overlays/%s: %s in namespace %q, others in %q", name, r.CurId(), ns, o.namespace)
			}
		}
	}
	if o.sts == nil || o.job == nil || o.pdb == nil {
		t.Fatalf("overlays/%s: want a StatefulSet, a Job and a PodDisruptionBudget", name)
	}
	return o
}

var overlays = []struct {
	name         string
	namespace    string
	monitoring   bool
	storageClass string
}{
	{"dev", "akosha-dev", false, "standard"},
	{"staging", "akosha-staging", true, "akosha-ssd"},
	{"prod", "akosha-prod", true, "akosha-ssd"},
}

// TestOverlays builds each overlay and checks that what refers to something finds it:
// volumes, probes, ports, selectors, config and secret references, the shard count, the
// storage classes, the grace period, and the paths the akosha binary resolves from the
// pods' environment against the volumes mounted there.
func TestOverlays(t *testing.T) {
	for _, want := range overlays {
		t.Run(want.name, func(t *testing.T) {
			o := build(t, want.name)
			// No Namespace object: `kubectl delete -k` must not take the shards' volumes with it.
			if o.namespace != want.namespace || len(o.namespaces) > 0 {
				t.Errorf("namespace %q (Namespace objects %v), want %q and no Namespace in the overlay", o.namespace, o.namespaces, want.namespace)
			}
			if got := len(o.serviceMonitors) > 0 && len(o.rules) > 0; got != want.monitoring {
				t.Errorf("ServiceMonitor and PrometheusRule present: %v, want %v", got, want.monitoring)
			}
			for _, err := range checkOverlay(o, want.storageClass) {
				t.Error(err)
			}
			for _, err := range checkPaths(t, o) {
				t.Error(err)
			}
		})
	}
}

// checkOverlay returns what is inconsistent in o.
func checkOverlay(o *overlay, storageClass string) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	sts := o.sts
	pod := &sts.Spec.Template
	labels := pod.Labels

	// Selectors: the StatefulSet's, the PDB's, the Services' and the ServiceMonitors'.
	if sel := sts.Spec.Selector; sel == nil || !subset(sel.MatchLabels, labels) || len(sel.MatchExpressions) > 0 {
		fail("StatefulSet selector %v does not select its pod labels %v", sel, labels)
	}
	if sel := o.pdb.Spec.Selector; sel == nil || !subset(sel.MatchLabels, labels) {
		fail("PodDisruptionBudget selector %v does not select the shards %v", sel, labels)
	}
	var governing *corev1.Service
	for _, s := range o.services {
		if s.Name == sts.Spec.ServiceName {
			governing = s
		}
	}
	if governing == nil {
		fail("StatefulSet serviceName %q: no such Service", sts.Spec.ServiceName)
	} else if governing.Spec.ClusterIP != corev1.ClusterIPNone {
		fail("Service %s governs the StatefulSet but is not headless", governing.Name)
	}

	// Containers: volume mounts name volumes or claim templates; every volume is mounted.
	volumes := map[string]string{} // name -> "claim" or the volume source kind
	for _, c := range sts.Spec.VolumeClaimTemplates {
		volumes[c.Name] = "claim"
		if c.Spec.StorageClassName == nil || *c.Spec.StorageClassName != storageClass {
			fail("volumeClaimTemplate %s: storageClassName %v, want %q", c.Name, c.Spec.StorageClassName, storageClass)
		}
		if !slices.Equal(c.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
			fail("volumeClaimTemplate %s: access modes %v, want ReadWriteOnce only (one writer per shard)", c.Name, c.Spec.AccessModes)
		}
		if q, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]; !ok || q.IsZero() {
			fail("volumeClaimTemplate %s: no storage request", c.Name)
		}
	}
	for _, v := range pod.Spec.Volumes {
		if _, dup := volumes[v.Name]; dup {
			fail("volume %s defined twice", v.Name)
		}
		switch {
		case v.EmptyDir != nil:
			volumes[v.Name] = "emptyDir"
		default:
			volumes[v.Name] = "other"
		}
	}
	used := map[string]bool{}
	containers := append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...)
	for _, c := range containers {
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				fail("container %s mounts %q at %s: no such volume or claim template", c.Name, m.Name, m.MountPath)
			}
			used[m.Name] = true
		}
	}
	for name := range volumes {
		if !used[name] {
			fail("volume %s is mounted by no container", name)
		}
	}
	if len(pod.Spec.Containers) != 1 {
		fail("want one container per shard pod, have %d", len(pod.Spec.Containers))
		return errs
	}
	main := pod.Spec.Containers[0]

	// Ports: probes and Services name ports the container has.
	ports := map[string]int32{}
	for _, p := range main.Ports {
		if p.Name == "" {
			fail("container port %d has no name", p.ContainerPort)
		}
		ports[p.Name] = p.ContainerPort
	}
	hasPort := func(p intstr.IntOrString) bool {
		if p.Type == intstr.String {
			_, ok := ports[p.StrVal]
			return ok
		}
		for _, n := range ports {
			if n == p.IntVal {
				return true
			}
		}
		return false
	}
	probes := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"startupProbe", main.StartupProbe, "/health"},
		{"livenessProbe", main.LivenessProbe, "/health"},
		{"readinessProbe", main.ReadinessProbe, "/ready"},
	}
	for _, p := range probes {
		switch {
		case p.probe == nil || p.probe.HTTPGet == nil:
			fail("%s: want an HTTP GET of %s", p.name, p.path)
		case p.probe.HTTPGet.Path != p.path:
			fail("%s: path %s, want %s", p.name, p.probe.HTTPGet.Path, p.path)
		case !hasPort(p.probe.HTTPGet.Port):
			fail("%s: port %s is not a container port (%v)", p.name, p.probe.HTTPGet.Port.String(), ports)
		case p.probe.HTTPGet.Port.String() != "api" && p.probe.HTTPGet.Port.IntValue() != int(ports["api"]):
			fail("%s: probes the %s port, want the API port", p.name, p.probe.HTTPGet.Port.String())
		}
	}
	for _, s := range o.services {
		if !subset(s.Spec.Selector, labels) || len(s.Spec.Selector) == 0 {
			fail("Service %s selector %v does not select the shards", s.Name, s.Spec.Selector)
		}
		for _, sp := range s.Spec.Ports {
			if !hasPort(sp.TargetPort) {
				fail("Service %s port %s: targetPort %s is not a container port", s.Name, sp.Name, sp.TargetPort.String())
			}
		}
	}
	for _, sm := range o.serviceMonitors {
		// The rules select job="akosha": the job label must come from a Service label.
		if sm.Spec.JobLabel == "" {
			fail("ServiceMonitor %s: no jobLabel: its job would be the Service's name, not the rules' job=\"akosha\"", sm.Name)
		}
		matched := false
		for _, s := range o.services {
			if subset(sm.Spec.Selector.MatchLabels, s.Labels) {
				matched = true
				for _, ep := range sm.Spec.Endpoints {
					if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
						fail("ServiceMonitor %s: endpoint port %q is not a port of Service %s", sm.Name, ep.Port, s.Name)
					}
				}
				if sm.Spec.JobLabel != "" && s.Labels[sm.Spec.JobLabel] != "akosha" {
					fail("ServiceMonitor %s: jobLabel %s is %q on Service %s, want akosha (the rules' job)", sm.Name, sm.Spec.JobLabel, s.Labels[sm.Spec.JobLabel], s.Name)
				}
			}
		}
		if !matched {
			fail("ServiceMonitor %s selects no Service (%v)", sm.Name, sm.Spec.Selector.MatchLabels)
		}
	}

	// Config and secrets: what the shards and the schedules Job read exists.
	secretTemplate := templateSecret()
	for _, spec := range []struct {
		owner string
		pod   corev1.PodSpec
	}{{"StatefulSet", pod.Spec}, {"Job", o.job.Spec.Template.Spec}} {
		for _, c := range spec.pod.Containers {
			for _, from := range c.EnvFrom {
				switch {
				case from.ConfigMapRef != nil:
					if o.configMaps[from.ConfigMapRef.Name] == nil {
						fail("%s container %s: ConfigMap %q is not in the overlay", spec.owner, c.Name, from.ConfigMapRef.Name)
					}
				case from.SecretRef != nil:
					name := from.SecretRef.Name
					if o.secrets[name] == nil && name != secretTemplate.Name {
						fail("%s container %s: Secret %q is neither in the overlay nor the one base/secret.template.yaml documents (%q)", spec.owner, c.Name, name, secretTemplate.Name)
					}
				}
			}
			if !strings.Contains(c.Image, ":") || strings.HasSuffix(c.Image, ":latest") {
				fail("%s container %s: image %q has no pinned tag", spec.owner, c.Name, c.Image)
			}
			if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				fail("%s container %s: root filesystem not read-only", spec.owner, c.Name)
			}
		}
		if spec.pod.SecurityContext == nil || spec.pod.SecurityContext.RunAsUser == nil || *spec.pod.SecurityContext.RunAsUser != 1000 {
			fail("%s: pods do not run as uid 1000 (the image's user)", spec.owner)
		}
	}
	if o.job.Spec.Template.Spec.Containers[0].Image != main.Image {
		fail("the schedules Job runs %s, the shards %s", o.job.Spec.Template.Spec.Containers[0].Image, main.Image)
	}
	if args := o.job.Spec.Template.Spec.Containers[0].Args; !slices.Equal(args, []string{"schedule", "apply"}) {
		fail("the schedules Job runs akosha %v, want schedule apply", args)
	}

	// The shard count the hash and the fan-out use is the number of shard pods.
	replicas := int32(1)
	if sts.Spec.Replicas != nil {
		replicas = *sts.Spec.Replicas
	}
	env := podEnv(o, main)
	if got := env["AKOSHA_SHARDS"]; got != strconv.Itoa(int(replicas)) {
		fail("AKOSHA_SHARDS=%q but the StatefulSet has %d replicas", got, replicas)
	}
	if !slices.ContainsFunc(main.Env, func(e corev1.EnvVar) bool {
		return e.Name == "AKOSHA_SHARD_ID" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.labels['apps.kubernetes.io/pod-index']"
	}) {
		fail("AKOSHA_SHARD_ID does not come from the pod's StatefulSet index")
	}

	// Shutdown: the worker's grace period ends before Kubernetes kills it.
	grace := 30 * time.Second // worker.DefaultGracePeriod
	if i := slices.Index(main.Args, "--grace-period"); i >= 0 && i+1 < len(main.Args) {
		d, err := time.ParseDuration(main.Args[i+1])
		if err != nil {
			fail("--grace-period %q: %v", main.Args[i+1], err)
		}
		grace = d
	}
	if tg := pod.Spec.TerminationGracePeriodSeconds; tg == nil || time.Duration(*tg)*time.Second < grace+15*time.Second {
		fail("terminationGracePeriodSeconds %v leaves the worker's --grace-period %s less than 15 s to checkpoint and close", tg, grace)
	}

	// Storage classes other than the cluster's default are the ones this repository ships.
	if storageClass != "standard" {
		for _, f := range []string{"gke-pd-ssd.yaml", "eks-gp3.yaml"} {
			data, err := os.ReadFile(filepath.Join(k8sDir, "storageclasses", f))
			if err != nil {
				fail("%v", err)
				continue
			}
			var sc storagev1.StorageClass
			if err := yaml.UnmarshalStrict(data, &sc); err != nil || sc.Name != storageClass {
				fail("storageclasses/%s defines %q (%v), the overlay uses %q", f, sc.Name, err, storageClass)
			}
		}
	}
	return errs
}

// podEnv is the environment the shard container gets from its ConfigMaps and Secrets (the
// Secret documented by the template when the overlay does not generate one) and plain env.
func podEnv(o *overlay, c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef != nil {
			if cm := o.configMaps[from.ConfigMapRef.Name]; cm != nil {
				for k, v := range cm.Data {
					env[k] = v
				}
			}
		}
		if from.SecretRef != nil {
			s := o.secrets[from.SecretRef.Name]
			if s == nil {
				s = templateSecret()
			}
			for k, v := range s.StringData {
				env[k] = v
			}
			for k, v := range s.Data {
				env[k] = string(v)
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	return env
}

func templateSecret() *corev1.Secret {
	data, err := os.ReadFile(filepath.Join(k8sDir, "base", "secret.template.yaml"))
	if err != nil {
		panic(err)
	}
	var s corev1.Secret
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		panic(err)
	}
	return &s
}

// checkPaths runs `akosha config show` with the last shard's environment (the config file
// the image carries is config/ of this repository) and checks the data paths it resolves:
// each on a volume mounted in the container, the warm and WAL directories on two different
// claim templates, and the API and metrics ports the container's ports.
func checkPaths(t *testing.T, o *overlay) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	main := o.sts.Spec.Template.Spec.Containers[0]
	env := podEnv(o, main)
	replicas := int(*o.sts.Spec.Replicas)
	env["AKOSHA_SHARD_ID"] = strconv.Itoa(replicas - 1)
	settings := configShow(t, env)

	claims := map[string]bool{}
	for _, c := range o.sts.Spec.VolumeClaimTemplates {
		claims[c.Name] = true
	}
	volumeOf := func(p string) string { // the volume of the deepest mount holding p
		best, bestLen := "", -1
		for _, m := range main.VolumeMounts {
			if (p == m.MountPath || strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/")) && len(m.MountPath) > bestLen {
				best, bestLen = m.Name, len(m.MountPath)
			}
		}
		return best
	}
	keys := []string{"storage.hot.path", "storage.hot.wal_path", "storage.warm.path", "backup.path"}
	if settings["storage.cold.backend"] == "file" {
		keys = append(keys, "storage.cold.path")
	}
	for _, k := range keys {
		p := settings[k]
		if !path.IsAbs(p) {
			fail("%s = %q: not an absolute path", k, p)
			continue
		}
		for _, m := range main.VolumeMounts {
			if path.Clean(m.MountPath) == path.Clean(p) {
				fail("%s = %s is the mount point of volume %s: an in-place restore renames it, which a mount point refuses; mount the volume above it", k, p, m.Name)
			}
		}
		if v := volumeOf(p); v == "" {
			fail("%s = %s is on the container's read-only root filesystem: no volume is mounted there", k, p)
		} else if !claims[v] {
			fail("%s = %s is on volume %s, which is not one of the shard's own disks (claim templates)", k, p, v)
		}
	}
	warm, wal := volumeOf(settings["storage.warm.path"]), volumeOf(settings["storage.hot.wal_path"])
	if warm != "warm" || wal != "wal" {
		fail("storage.warm.path is on volume %q and storage.hot.wal_path on %q: want the warm and wal claims", warm, wal)
	}
	if _, port, _ := strings.Cut(settings["api.addr"], ":"); port != portString(main, "api") {
		fail("api.addr %q, container port api %s", settings["api.addr"], portString(main, "api"))
	}
	if settings["monitoring.prometheus_port"] != portString(main, "metrics") {
		fail("monitoring.prometheus_port %q, container port metrics %s", settings["monitoring.prometheus_port"], portString(main, "metrics"))
	}
	if settings["shard.count"] != strconv.Itoa(replicas) || settings["shard.id"] != strconv.Itoa(replicas-1) {
		fail("shard %s of %s resolved, want %d of %d", settings["shard.id"], settings["shard.count"], replicas-1, replicas)
	}
	// The init container prepares the same directories the worker mounts.
	init := o.sts.Spec.Template.Spec.InitContainers[0]
	for _, m := range main.VolumeMounts {
		if claims[m.Name] && !slices.ContainsFunc(init.VolumeMounts, func(im corev1.VolumeMount) bool { return im.Name == m.Name && im.MountPath == m.MountPath }) {
			fail("init container %s does not mount %s at %s as the worker does", init.Name, m.Name, m.MountPath)
		}
		if _, chowned, _ := strings.Cut(strings.Join(init.Command, " "), "chown 1000:1000 "); claims[m.Name] &&
			!slices.Contains(strings.Fields(chowned), m.MountPath) {
			fail("init container %s does not chown %s to 1000", init.Name, m.MountPath)
		}
	}
	return errs
}

func portString(c corev1.Container, name string) string {
	for _, p := range c.Ports {
		if p.Name == name {
			return strconv.Itoa(int(p.ContainerPort))
		}
	}
	return ""
}

// configShow runs the akosha binary's `config show --format json` with env (and nothing
// else of this process's AKOSHA_* environment) and returns key -> value.
func configShow(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	bin := akoshaBinary(t)
	cmd := exec.Command(bin, "config", "show", "--format", "json")
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=/data/akosha", "TMPDIR=/data/akosha/tmp"}
	for k, v := range env {
		if k == "AKOSHA_CONFIG" {
			// The image carries the repository's config/ at /etc/akosha.
			if rest, ok := strings.CutPrefix(v, "/etc/akosha/"); ok {
				abs, err := filepath.Abs(filepath.Join("..", "..", "config", rest))
				if err != nil {
					t.Fatal(err)
				}
				v = abs
			} else {
				t.Fatalf("AKOSHA_CONFIG=%s is not a file the image carries (/etc/akosha/...)", v)
			}
		}
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("akosha config show with the pod's environment: %v\n%s", err, stderr.String())
	}
	var rows []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("config show: %v", err)
	}
	m := map[string]string{}
	for _, r := range rows {
		m[r.Key] = r.Value
	}
	return m
}

var (
	binOnce sync.Once
	binPath string
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// akoshaBinary is $AKOSHA_BIN, or the akosha binary built from this repository once.
func akoshaBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("AKOSHA_BIN"); p != "" {
		return p
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "akosha-check-")
		binDir = dir
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "akosha")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/akosha")
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/akosha: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func subset(want, have map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func isJSONPatch(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(stripComments(data)), []byte("- op:"))
}

// stripComments drops whole-line YAML comments.
func stripComments(data []byte) []byte {
	var out [][]byte
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// TestOverlayChecksFail breaks a built overlay in the ways the checks look for: each must
// be reported.
func TestOverlayChecksFail(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(o *overlay)
		want   string
	}{
		{"shard count", func(o *overlay) { o.sts.Spec.Replicas = ptr(int32(5)) }, "AKOSHA_SHARDS"},
		{"mount of a missing volume", func(o *overlay) { o.sts.Spec.Template.Spec.Containers[0].VolumeMounts[0].Name = "data" }, "no such volume"},
		{"probe port", func(o *overlay) {
			o.sts.Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Port = intstr.FromString("http")
		}, "readinessProbe: port http"},
		{"service target port", func(o *overlay) { o.services[0].Spec.Ports[0].TargetPort = intstr.FromInt32(8080) }, "targetPort 8080"},
		{"governing service", func(o *overlay) { o.sts.Spec.ServiceName = "akosha" }, "serviceName"},
		{"pdb selector", func(o *overlay) { o.pdb.Spec.Selector.MatchLabels = map[string]string{"app": "other"} }, "PodDisruptionBudget"},
		{"missing config map", func(o *overlay) {
			delete(o.configMaps, o.sts.Spec.Template.Spec.Containers[0].EnvFrom[0].ConfigMapRef.Name)
		}, "ConfigMap"},
		{"grace period", func(o *overlay) { o.sts.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr(int64(30)) }, "terminationGracePeriodSeconds"},
		{"writable root", func(o *overlay) {
			o.sts.Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = ptr(false)
		}, "read-only"},
		{"service monitor port", func(o *overlay) { o.serviceMonitors[0].Spec.Endpoints[0].Port = "web" }, `endpoint port "web"`},
		{"service monitor job", func(o *overlay) { o.serviceMonitors[0].Spec.JobLabel = "" }, "no jobLabel"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := build(t, "prod")
			if errs := checkOverlay(o, "akosha-ssd"); len(errs) > 0 {
				t.Fatalf("the prod overlay fails before breaking it: %v", errs)
			}
			c.break_(o)
			errs := checkOverlay(o, "akosha-ssd")
			if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), c.want) }) {
				t.Fatalf("no error mentioning %q after breaking %s: %v", c.want, c.name, errs)
			}
		})
	}
}

// TestPathChecksFail moves the WAL mount so the WAL lands on the warm disk, and the warm
// mount away so the databases land on the read-only root filesystem.
func TestPathChecksFail(t *testing.T) {
	o := build(t, "staging")
	init := &o.sts.Spec.Template.Spec.InitContainers[0]
	saved := slices.Clone(init.Command)
	init.Command[len(init.Command)-1] = strings.Replace(init.Command[len(init.Command)-1], " /data/akosha/staging/wal-disk ", " ", 1)
	if errs := checkPaths(t, o); !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), "does not chown /data/akosha/staging/wal-disk") }) {
		t.Errorf("an init container that leaves the WAL volume to root not reported: %v", errs)
	}
	init.Command = saved
	mounts := o.sts.Spec.Template.Spec.Containers[0].VolumeMounts
	mounts[1].MountPath = "/data/akosha/staging/wal-disk/wal"
	if errs := checkPaths(t, o); !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), "is the mount point of volume wal") }) {
		t.Errorf("the WAL directory as a mount point not reported: %v", errs)
	}
	mounts[1].MountPath = "/data/akosha/other-wal"
	errs := checkPaths(t, o)
	if !slices.ContainsFunc(errs, func(e error) bool {
		return strings.Contains(e.Error(), `storage.hot.wal_path is on volume "warm"`) ||
			strings.Contains(e.Error(), `on volume "warm" and storage.hot.wal_path on "warm"`)
	}) {
		t.Errorf("WAL on the warm disk not reported: %v", errs)
	}
	mounts[0].MountPath = "/srv"
	errs = checkPaths(t, o)
	if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), "read-only root filesystem") }) {
		t.Errorf("databases on the root filesystem not reported: %v", errs)
	}
}

func ptr[T any](v T) *T { return &v }
