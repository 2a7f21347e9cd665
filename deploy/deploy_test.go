// Package deploy_test checks the deployment files: that they parse, that
// kustomize can build the base, each component and the example, that the
// AWS CLI accepts the ECS inputs, that the IAM policy stays least-privilege,
// that shutdown grace, stop timeouts and probes agree, that the migration
// Job and task run before the workers as documented, and that every file
// names the same image and region. No container engine or cluster is
// needed; tests that need kubectl or the AWS CLI skip without them.
// cloudformation_test.go deploys the CloudFormation templates on moto.
//
// cmd/pgtrail's deployenv_test.go checks that every environment variable
// these files set is one pgtrail reads.
package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// repoRoot is the repository, seen from this package's directory.
const repoRoot = ".."

// shutdownGrace is PGTRAIL_SHUTDOWN_GRACE as every deployment sets it.
const shutdownGrace = 30 * time.Second

// stopMargin is what a stop timeout needs beyond the grace: releasing
// unfinished messages (up to 10 s), stopping the HTTP server (up to 5 s) and
// closing the pool.
const stopMargin = 15 * time.Second

// readYAML decodes every document of a YAML file.
func readYAML(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return decodeYAML(t, path, b)
}

func decodeYAML(t *testing.T, name string, b []byte) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

// readJSON decodes a JSON file, refusing unknown trailing data.
func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if dec.More() {
		t.Fatalf("%s: data after the JSON object", path)
	}
	return v
}

// dig walks nested maps and lists: a string step indexes a map, an int a
// list. It returns nil when the path does not exist.
func dig(v any, path ...any) any {
	for _, step := range path {
		switch s := step.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[s]
		case int:
			l, ok := v.([]any)
			if !ok || s >= len(l) {
				return nil
			}
			v = l[s]
		}
	}
	return v
}

// seconds reads a number of seconds that YAML or JSON decoded.
func seconds(t *testing.T, what string, v any) time.Duration {
	t.Helper()
	switch n := v.(type) {
	case int:
		return time.Duration(n) * time.Second
	case float64:
		return time.Duration(n * float64(time.Second))
	case string:
		d, err := time.ParseDuration(n)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return d
	}
	t.Fatalf("%s = %v (%T), want a number of seconds", what, v, v)
	return 0
}

func TestEveryFileParses(t *testing.T) {
	t.Parallel()
	files := []string{filepath.Join(repoRoot, "docker-compose.yml")}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		switch filepath.Ext(f) {
		case ".yaml", ".yml":
			if docs := readYAML(t, f); len(docs) == 0 {
				t.Errorf("%s has no document", f)
			}
			n++
		case ".json":
			readJSON(t, f)
			n++
		}
	}
	if n < 20 {
		t.Errorf("parsed only %d files", n)
	}
}

// kustomization is what the tests read of a kustomization.yaml.
type kustomization struct {
	Kind       string   `yaml:"kind"`
	Resources  []string `yaml:"resources"`
	Components []string `yaml:"components"`
	Patches    []struct {
		Path string `yaml:"path"`
	} `yaml:"patches"`
}

// kustomizeDirs are the directories of deploy/kubernetes that hold a
// kustomization.yaml.
func kustomizeDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir("kubernetes", func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "kustomization.yaml" {
			dirs = append(dirs, filepath.Dir(path))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 5 {
		t.Fatalf("found only %d kustomizations under kubernetes/", len(dirs))
	}
	return dirs
}

func TestKustomizationsListFilesThatExist(t *testing.T) {
	t.Parallel()
	for _, dir := range kustomizeDirs(t) {
		b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var k kustomization
		if err := yaml.Unmarshal(b, &k); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if strings.HasPrefix(dir, filepath.Join("kubernetes", "components")) != (k.Kind == "Component") {
			t.Errorf("%s is a %s: components/ holds the Components, and only they", dir, k.Kind)
		}
		listed := map[string]bool{"kustomization.yaml": true}
		for _, r := range k.Resources {
			p := filepath.Join(dir, r)
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s/kustomization.yaml lists %s: %v", dir, r, err)
			}
			listed[r] = true
		}
		for _, c := range k.Components {
			if _, err := os.Stat(filepath.Join(dir, c, "kustomization.yaml")); err != nil {
				t.Errorf("%s/kustomization.yaml uses the component %s: %v", dir, c, err)
			}
		}
		for _, p := range k.Patches {
			if p.Path == "" {
				continue
			}
			if _, err := os.Stat(filepath.Join(dir, p.Path)); err != nil {
				t.Errorf("%s/kustomization.yaml patches with %s: %v", dir, p.Path, err)
			}
			listed[p.Path] = true
		}
		// A manifest beside the kustomization that it does not list is
		// forgotten, not deployed.
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".yaml") && !listed[e.Name()] {
				t.Errorf("%s/%s is not in its kustomization.yaml", dir, e.Name())
			}
		}
	}
}

// kustomize renders dir with kubectl, or skips the test without it.
func kustomize(t *testing.T, dir string) map[string]map[string]any {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	out, err := exec.Command(kubectl, "kustomize", dir).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, ee.Stderr)
		}
		t.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	byKind := map[string]map[string]any{}
	for _, doc := range decodeYAML(t, dir, out) {
		kind, _ := doc["kind"].(string)
		if byKind[kind] != nil {
			t.Fatalf("%s renders two %s objects; the tests expect one", dir, kind)
		}
		byKind[kind] = doc
	}
	return byKind
}

// composed writes a kustomization of the base and the named components to a
// directory of its own, for kubectl to render.
func composed(t *testing.T, components ...string) string {
	t.Helper()
	dir := t.TempDir()
	rel := func(p string) string {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := filepath.Rel(dir, abs)
		if err != nil {
			t.Fatal(err)
		}
		return filepath.ToSlash(r)
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - " + rel("kubernetes/base") + "\n"
	if len(components) > 0 {
		k += "components:\n"
		for _, c := range components {
			k += "  - " + rel(filepath.Join("kubernetes/components", c)) + "\n"
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// workerKinds are the objects of the workers: they carry
// app.kubernetes.io/component=worker, so that a rollout can apply
// everything else (the migration Job and the settings) first.
var workerKinds = []string{"Deployment", "Service", "PodDisruptionBudget", "ScaledObject", "TriggerAuthentication", "ServiceMonitor", "PrometheusRule"}

// TestKubernetes renders the base alone, the base with each component, and
// the example overlay, and checks each.
func TestKubernetes(t *testing.T) {
	t.Parallel()
	for _, r := range []struct {
		name       string
		dir        func(*testing.T) string
		components []string
	}{
		{"base", func(*testing.T) string { return "kubernetes/base" }, nil},
		{"keda", nil, []string{"keda"}},
		{"prometheus-operator", nil, []string{"prometheus-operator"}},
		{"migrate-job", nil, []string{"migrate-job"}},
		{"example", func(*testing.T) string { return "kubernetes/overlays/example" }, []string{"migrate-job", "keda", "prometheus-operator"}},
	} {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			dir := ""
			if r.dir != nil {
				dir = r.dir(t)
			} else {
				dir = composed(t, r.components...)
			}
			objs := kustomize(t, dir)
			want := []string{"Deployment", "ServiceAccount", "ConfigMap", "Service", "PodDisruptionBudget"}
			has := func(c string) bool { return slices.Contains(r.components, c) }
			if has("keda") {
				want = append(want, "ScaledObject", "TriggerAuthentication")
			}
			if has("prometheus-operator") {
				want = append(want, "ServiceMonitor", "PrometheusRule")
			}
			if has("migrate-job") {
				want = append(want, "Job")
			}
			for _, kind := range want {
				if objs[kind] == nil {
					t.Errorf("no %s", kind)
				}
			}
			for kind := range objs {
				if !slices.Contains(want, kind) && kind != "Secret" && kind != "Namespace" {
					t.Errorf("renders a %s, which it should not", kind)
				}
			}
			if r.name == "base" && objs["Secret"] == nil {
				t.Error("the base has no Secret")
			}
			checkDeployment(t, objs)
			checkSettings(t, objs)
			checkImages(t, r.name, objs)
			checkRolloutLabels(t, objs)
			if has("keda") {
				checkScaling(t, objs)
			}
			if has("prometheus-operator") {
				checkMetrics(t, objs)
			}
			if has("migrate-job") {
				checkMigrateJob(t, objs)
			} else if m := dig(objs["ConfigMap"], "data", "PGTRAIL_MIGRATE"); m != "true" {
				t.Errorf("without the migration Job, PGTRAIL_MIGRATE = %v: nothing would migrate", m)
			}
		})
	}
}

func checkDeployment(t *testing.T, objs map[string]map[string]any) {
	t.Helper()
	dep, cm := objs["Deployment"], objs["ConfigMap"]
	if dig(dep, "spec", "replicas") != nil && objs["ScaledObject"] != nil {
		t.Error("the Deployment sets replicas, which KEDA owns")
	}
	pod := dig(dep, "spec", "template", "spec")
	grace, err := time.ParseDuration(dig(cm, "data", "PGTRAIL_SHUTDOWN_GRACE").(string))
	if err != nil {
		t.Fatalf("PGTRAIL_SHUTDOWN_GRACE: %v", err)
	}
	if term := seconds(t, "terminationGracePeriodSeconds", dig(pod, "terminationGracePeriodSeconds")); term < grace+stopMargin {
		t.Errorf("terminationGracePeriodSeconds = %s, want at least PGTRAIL_SHUTDOWN_GRACE (%s) + %s", term, grace, stopMargin)
	}
	if dig(pod, "securityContext", "runAsNonRoot") != true {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	if sa := dig(pod, "serviceAccountName"); sa != dig(objs["ServiceAccount"], "metadata", "name") {
		t.Errorf("serviceAccountName %v is not the ServiceAccount", sa)
	}
	if dig(objs["ServiceAccount"], "metadata", "annotations", "eks.amazonaws.com/role-arn") == nil {
		t.Error("the ServiceAccount has no IRSA role annotation")
	}
	c := dig(pod, "containers", 0)
	if dig(c, "securityContext", "readOnlyRootFilesystem") != true {
		t.Error("the container's root filesystem is writable")
	}
	if dig(c, "securityContext", "allowPrivilegeEscalation") != false {
		t.Error("the container may escalate privileges")
	}
	if caps, _ := dig(c, "securityContext", "capabilities", "drop").([]any); !slices.Contains(caps, any("ALL")) {
		t.Error("the container keeps its capabilities")
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
		if got := dig(c, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path = %v, want %s", probe, got, path)
		}
		if got := dig(c, probe, "httpGet", "port"); got != "metrics" {
			t.Errorf("%s port = %v, want the metrics port", probe, got)
		}
	}
	port := dig(c, "ports", 0)
	if dig(port, "name") != "metrics" || dig(port, "containerPort") != 9090 {
		t.Errorf("container port = %v, want metrics 9090", port)
	}
	if addr := dig(cm, "data", "PGTRAIL_HTTP_ADDR"); addr != ":9090" {
		t.Errorf("PGTRAIL_HTTP_ADDR = %v, want :9090 as the probes expect", addr)
	}
	var fromCM, fromSecret bool
	for _, src := range dig(c, "envFrom").([]any) {
		fromCM = fromCM || dig(src, "configMapRef", "name") == dig(cm, "metadata", "name")
		fromSecret = fromSecret || dig(src, "secretRef", "name") == "pgtrail-database"
	}
	if !fromCM || !fromSecret {
		t.Errorf("the container does not take its environment from the ConfigMap (%v) and the database Secret (%v)", fromCM, fromSecret)
	}
	if s := objs["Secret"]; s != nil {
		if dig(s, "stringData", "DATABASE_URL") == nil {
			t.Error("the Secret has no DATABASE_URL")
		}
	}
	if dig(cm, "data", "DATABASE_URL") != nil {
		t.Error("DATABASE_URL, which holds a password, is in the ConfigMap")
	}
	if got := dig(objs["PodDisruptionBudget"], "spec", "selector", "matchLabels"); !equalYAML(got, dig(dep, "spec", "selector", "matchLabels")) {
		t.Errorf("the PodDisruptionBudget selects %v, not the Deployment's pods", got)
	}
}

func checkScaling(t *testing.T, objs map[string]map[string]any) {
	t.Helper()
	so := objs["ScaledObject"]
	if got := dig(so, "spec", "scaleTargetRef", "name"); got != dig(objs["Deployment"], "metadata", "name") {
		t.Errorf("the ScaledObject scales %v, not the Deployment", got)
	}
	trig := dig(so, "spec", "triggers", 0)
	if dig(trig, "type") != "aws-sqs-queue" {
		t.Errorf("trigger type = %v, want aws-sqs-queue", dig(trig, "type"))
	}
	if env := dig(trig, "metadata", "queueURLFromEnv"); env != nil {
		if dig(objs["ConfigMap"], "data", env.(string)) == nil {
			t.Errorf("queueURLFromEnv names %v, which the ConfigMap does not set", env)
		}
	} else if dig(trig, "metadata", "queueURL") == nil {
		t.Error("the trigger names no queue")
	}
	if region := dig(trig, "metadata", "awsRegion"); region != dig(objs["ConfigMap"], "data", "AWS_REGION") {
		t.Errorf("the trigger's region %v is not the workers' AWS_REGION %v", region, dig(objs["ConfigMap"], "data", "AWS_REGION"))
	}
	if got := dig(trig, "authenticationRef", "name"); got != dig(objs["TriggerAuthentication"], "metadata", "name") {
		t.Errorf("the trigger authenticates with %v, which is not the TriggerAuthentication", got)
	}
	minR, _ := dig(so, "spec", "minReplicaCount").(int)
	maxR, _ := dig(so, "spec", "maxReplicaCount").(int)
	if minR < 1 || maxR < minR {
		t.Errorf("replicas %d to %d: want at least one, and max ≥ min", minR, maxR)
	}
}

func checkMetrics(t *testing.T, objs map[string]map[string]any) {
	t.Helper()
	svc, sm := objs["Service"], objs["ServiceMonitor"]
	if !equalYAML(dig(sm, "spec", "selector", "matchLabels"), dig(svc, "metadata", "labels")) &&
		!subset(dig(sm, "spec", "selector", "matchLabels"), dig(svc, "metadata", "labels")) {
		t.Error("the ServiceMonitor does not select the metrics Service")
	}
	if dig(sm, "spec", "endpoints", 0, "port") != dig(svc, "spec", "ports", 0, "name") {
		t.Error("the ServiceMonitor scrapes another port than the Service's")
	}
	if !subset(dig(svc, "spec", "selector"), dig(objs["Deployment"], "spec", "template", "metadata", "labels")) {
		t.Error("the metrics Service does not select the workers")
	}
	// Every metric an alert uses is one pgtrail exports (or Prometheus's up).
	exported := regexp.MustCompile(`\b(pgtrail_[a-z_]+|up)\b`)
	known := knownMetrics(t)
	for _, g := range dig(objs["PrometheusRule"], "spec", "groups").([]any) {
		for _, r := range dig(g, "rules").([]any) {
			expr, _ := dig(r, "expr").(string)
			for _, m := range exported.FindAllString(expr, -1) {
				if m != "up" && !known[m] {
					t.Errorf("alert %v uses %s, which pgtrail does not export", dig(r, "alert"), m)
				}
			}
		}
	}
}

// exampleImage is the image every deployment file names: the example
// registry of the docs, and the release's tag.
const exampleImage = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/pgtrail:1.0.0"

// awsRegion finds region names (eu-west-1, us-gov-west-1, …) in text.
var awsRegion = regexp.MustCompile(`\b(?:us|eu|ap|sa|ca|me|af|il|mx|cn)(?:-gov|-iso[a-z]?)?-(?:north|south|east|west|central|northeast|southeast|northwest|southwest)-\d\b`)

// checkSettings checks that the queue's URL names the ConfigMap's region:
// the region is set once, and what else names it agrees.
func checkSettings(t *testing.T, objs map[string]map[string]any) {
	t.Helper()
	cm := objs["ConfigMap"]
	region, _ := dig(cm, "data", "AWS_REGION").(string)
	queue, _ := dig(cm, "data", "SQS_QUEUE_URL").(string)
	if got := awsRegion.FindString(queue); region == "" || got != region {
		t.Errorf("SQS_QUEUE_URL %s is in %q, AWS_REGION is %q", queue, got, region)
	}
}

// checkImages checks that every container runs the same image, one with a
// release's tag, and the example's.
func checkImages(t *testing.T, name string, objs map[string]map[string]any) {
	t.Helper()
	for _, kind := range []string{"Deployment", "Job"} {
		for _, c := range containersOf(objs[kind]) {
			img, _ := dig(c, "image").(string)
			if img != exampleImage {
				t.Errorf("%s: the %s's container %v runs %q, want %s as every deployment file", name, kind, dig(c, "name"), img, exampleImage)
			}
		}
	}
}

func containersOf(obj map[string]any) []any {
	if obj == nil {
		return nil
	}
	l, _ := dig(obj, "spec", "template", "spec", "containers").([]any)
	return l
}

// checkRolloutLabels checks the labels the rollout's first step selects
// on: every object of the workers is app.kubernetes.io/component=worker, so
// that `kubectl apply -l 'app.kubernetes.io/component!=worker'` applies the
// settings and the migration Job, and no worker.
func checkRolloutLabels(t *testing.T, objs map[string]map[string]any) {
	t.Helper()
	var first []string
	for kind, obj := range objs {
		worker := dig(obj, "metadata", "labels", "app.kubernetes.io/component") == "worker"
		if slices.Contains(workerKinds, kind) != worker {
			t.Errorf("the %s is labelled worker: %v", kind, worker)
		}
		if !worker {
			first = append(first, kind)
		}
	}
	slices.Sort(first)
	if objs["Job"] != nil && !slices.Contains(first, "Job") || !slices.Contains(first, "ConfigMap") {
		t.Errorf("the rollout's first step applies %v: not the settings and the migration Job", first)
	}
}

// checkMigrateJob checks the migration Job: pgtrail migrate with the
// owner's URL and the workers' settings, in a pod like the workers' that
// neither the metrics Service nor the disruption budget selects, and
// workers that do not migrate.
func checkMigrateJob(t *testing.T, objs map[string]map[string]any) {
	t.Helper()
	job, cm := objs["Job"], objs["ConfigMap"]
	if m := dig(cm, "data", "PGTRAIL_MIGRATE"); m != "false" {
		t.Errorf("with the migration Job, the workers' PGTRAIL_MIGRATE = %v, want false", m)
	}
	pod := dig(job, "spec", "template", "spec")
	cs := containersOf(job)
	if len(cs) != 1 {
		t.Fatalf("the Job has %d containers, want one", len(cs))
	}
	c := cs[0]
	if args := dig(c, "args"); !equalYAML(args, []any{"migrate"}) {
		t.Errorf("the Job runs %v, want [migrate]", args)
	}
	var fromCM, fromOwner bool
	for _, src := range dig(c, "envFrom").([]any) {
		fromCM = fromCM || dig(src, "configMapRef", "name") == dig(cm, "metadata", "name")
		fromOwner = fromOwner || dig(src, "secretRef", "name") == "pgtrail-database-owner"
		if dig(src, "secretRef", "name") == "pgtrail-database" {
			t.Error("the Job takes the workers' database Secret: it migrates as the owner")
		}
	}
	if !fromCM || !fromOwner {
		t.Errorf("the Job takes its environment from the ConfigMap (%v) and the owner's Secret (%v)", fromCM, fromOwner)
	}
	if dig(pod, "restartPolicy") != "Never" {
		t.Errorf("the Job's restartPolicy is %v", dig(pod, "restartPolicy"))
	}
	if dig(pod, "securityContext", "runAsNonRoot") != true || dig(pod, "automountServiceAccountToken") != false {
		t.Error("the Job's pod may run as root or mounts an API token")
	}
	if dig(c, "securityContext", "readOnlyRootFilesystem") != true || dig(c, "securityContext", "allowPrivilegeEscalation") != false {
		t.Error("the Job's container has a writable root filesystem or may escalate privileges")
	}
	if caps, _ := dig(c, "securityContext", "capabilities", "drop").([]any); !slices.Contains(caps, any("ALL")) {
		t.Error("the Job's container keeps its capabilities")
	}
	podLabels := dig(job, "spec", "template", "metadata", "labels")
	for _, sel := range []struct{ what, kind string }{{"the metrics Service", "Service"}, {"the disruption budget", "PodDisruptionBudget"}} {
		s := dig(objs[sel.kind], "spec", "selector")
		if ml := dig(s, "matchLabels"); ml != nil {
			s = ml
		}
		if subset(s, podLabels) {
			t.Errorf("%s selects the migration Job's pod", sel.what)
		}
	}
	if seconds(t, "activeDeadlineSeconds", dig(job, "spec", "activeDeadlineSeconds")) <= 0 {
		t.Error("the Job has no deadline")
	}
}

// TestKubernetesRegionOnce sets another region in a copy of the example
// overlay's ConfigMap, and nowhere else: KEDA's trigger must follow.
func TestKubernetesRegionOnce(t *testing.T) {
	t.Parallel()
	src := "kubernetes/overlays/example"
	dir := t.TempDir()
	abs, err := filepath.Abs("kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, abs)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), "../../", filepath.ToSlash(rel)+"/")
		if e.Name() == "configmap.yaml" {
			text = strings.ReplaceAll(text, "eu-west-1", "ap-southeast-2")
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	objs := kustomize(t, dir)
	if got := dig(objs["ScaledObject"], "spec", "triggers", 0, "metadata", "awsRegion"); got != "ap-southeast-2" {
		t.Errorf("with AWS_REGION ap-southeast-2 in the overlay's ConfigMap, KEDA's trigger reads the queue in %v", got)
	}
}

// knownMetrics reads the metric names out of the code that registers them.
func knownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	name := regexp.MustCompile(`"(pgtrail_[a-z_]+)"`)
	for _, f := range []string{"worker/metrics.go", "sink/stats.go"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range name.FindAllStringSubmatch(string(b), -1) {
			known[m[1]] = true
		}
	}
	// The pool collector builds its names from a prefix.
	b, _ := os.ReadFile(filepath.Join(repoRoot, "sink/stats.go"))
	for _, m := range regexp.MustCompile(`d\("([a-z_]+)"`).FindAllStringSubmatch(string(b), -1) {
		known["pgtrail_db_pool_"+m[1]] = true
	}
	if len(known) < 10 {
		t.Fatalf("found only %d metric names in the code", len(known))
	}
	return known
}

// equalYAML compares two decoded values.
func equalYAML(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// subset reports whether every key of small has the same value in big.
func subset(small, big any) bool {
	s, ok1 := small.(map[string]any)
	b, ok2 := big.(map[string]any)
	if !ok1 || !ok2 || len(s) == 0 {
		return false
	}
	for k, v := range s {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestECSTaskDefinition(t *testing.T) {
	t.Parallel()
	td := readJSON(t, "ecs/task-definition.json")
	c := dig(td, "containerDefinitions", 0)
	env := map[string]string{}
	for _, e := range dig(c, "environment").([]any) {
		env[dig(e, "name").(string)] = dig(e, "value").(string)
	}
	grace, err := time.ParseDuration(env["PGTRAIL_SHUTDOWN_GRACE"])
	if err != nil {
		t.Fatalf("PGTRAIL_SHUTDOWN_GRACE: %v", err)
	}
	if stop := seconds(t, "stopTimeout", dig(c, "stopTimeout")); stop < grace+stopMargin || stop > 120*time.Second {
		t.Errorf("stopTimeout = %s, want from PGTRAIL_SHUTDOWN_GRACE (%s) + %s to Fargate's 120s", stop, grace, stopMargin)
	}
	if _, ok := env["DATABASE_URL"]; ok {
		t.Error("DATABASE_URL, which holds a password, is a plain environment variable")
	}
	var secret bool
	for _, s := range dig(c, "secrets").([]any) {
		if dig(s, "name") == "DATABASE_URL" {
			from, _ := dig(s, "valueFrom").(string)
			secret = strings.HasPrefix(from, "arn:aws:secretsmanager:") || strings.HasPrefix(from, "arn:aws:ssm:")
		}
	}
	if !secret {
		t.Error("DATABASE_URL does not come from Secrets Manager or SSM")
	}
	if dig(c, "logConfiguration", "logDriver") != "awslogs" {
		t.Errorf("log driver = %v, want awslogs", dig(c, "logConfiguration", "logDriver"))
	}
	hc, _ := dig(c, "healthCheck", "command").([]any)
	if len(hc) < 2 || hc[0] != "CMD" || !slices.Contains(hc, any("-healthz")) {
		t.Errorf("health check = %v, want CMD … pgtrail status -healthz (the image has no shell)", hc)
	}
	if dig(c, "readonlyRootFilesystem") != true {
		t.Error("the root filesystem is writable")
	}
	if u, _ := dig(c, "user").(string); u == "" || strings.HasPrefix(u, "0") || u == "root" {
		t.Errorf("user = %q, want a non-root UID", u)
	}
	if env["PGTRAIL_HTTP_ADDR"] != ":9090" || dig(c, "portMappings", 0, "containerPort") != 9090.0 {
		t.Errorf("metrics on %q, port mapping %v; want :9090 on both", env["PGTRAIL_HTTP_ADDR"], dig(c, "portMappings", 0, "containerPort"))
	}

	// Scaling names the same queue as the workers and the service it scales.
	pol := readJSON(t, "ecs/scaling-policy.json")
	target := readJSON(t, "ecs/scalable-target.json")
	svc := readJSON(t, "ecs/service.json")
	wantResource := "service/" + dig(svc, "cluster").(string) + "/" + dig(svc, "serviceName").(string)
	for name, v := range map[string]any{"scalable-target.json": target, "scaling-policy.json": pol} {
		if got := dig(v, "ResourceId"); got != wantResource {
			t.Errorf("%s scales %v, want %s", name, got, wantResource)
		}
	}
	queue := env["SQS_QUEUE_URL"][strings.LastIndex(env["SQS_QUEUE_URL"], "/")+1:]
	metrics := dig(pol, "TargetTrackingScalingPolicyConfiguration", "CustomizedMetricSpecification", "Metrics").([]any)
	var sawQueue, sawTasks, returned int
	for _, m := range metrics {
		switch dig(m, "MetricStat", "Metric", "MetricName") {
		case "ApproximateNumberOfMessagesVisible":
			sawQueue++
			if got := dig(m, "MetricStat", "Metric", "Dimensions", 0, "Value"); got != queue {
				t.Errorf("scaling reads queue %v, the workers %s", got, queue)
			}
		case "RunningTaskCount":
			sawTasks++
		}
		if dig(m, "ReturnData") == true {
			returned++
		}
	}
	if sawQueue != 1 || sawTasks != 1 || returned != 1 {
		t.Errorf("scaling metrics: %d queue, %d task count, %d returned; want one of each", sawQueue, sawTasks, returned)
	}
	if dig(svc, "taskDefinition") != dig(td, "family") {
		t.Errorf("the service runs %v, not the task definition's family %v", dig(svc, "taskDefinition"), dig(td, "family"))
	}
}

// TestECSMigration checks the one-off migration task: pgtrail migrate, as
// the owner, with the workers' image, settings and logs, and run where the
// workers run.
func TestECSMigration(t *testing.T) {
	t.Parallel()
	worker := readJSON(t, "ecs/task-definition.json")
	td := readJSON(t, "ecs/migrate-task-definition.json")
	run := readJSON(t, "ecs/migrate-run-task.json")
	svc := readJSON(t, "ecs/service.json")
	wc, c := dig(worker, "containerDefinitions", 0), dig(td, "containerDefinitions", 0)
	if len(dig(td, "containerDefinitions").([]any)) != 1 {
		t.Fatal("the migration task has more than one container")
	}
	if got := dig(c, "command"); !equalYAML(got, []any{"migrate"}) {
		t.Errorf("the migration task runs %v, want [migrate]", got)
	}
	if dig(c, "image") != dig(wc, "image") {
		t.Errorf("the migration task runs %v, the workers %v", dig(c, "image"), dig(wc, "image"))
	}
	if dig(td, "taskRoleArn") != nil {
		t.Error("the migration task has a task role: it talks to PostgreSQL only")
	}
	// Its settings are the workers' (PGTRAIL_RETENTION_DAYS becomes the
	// floor the database enforces for them).
	env := func(c any) map[string]string {
		m := map[string]string{}
		for _, e := range dig(c, "environment").([]any) {
			m[dig(e, "name").(string)] = dig(e, "value").(string)
		}
		return m
	}
	we := env(wc)
	for k, v := range env(c) {
		if w, ok := we[k]; !ok || w != v {
			t.Errorf("the migration task sets %s=%s, the workers %q", k, v, w)
		}
	}
	if we["PGTRAIL_MIGRATE"] != "false" {
		t.Errorf("the workers' PGTRAIL_MIGRATE = %q: with the migration task they do not migrate", we["PGTRAIL_MIGRATE"])
	}
	secret := func(c any) string {
		for _, s := range dig(c, "secrets").([]any) {
			if dig(s, "name") == "DATABASE_URL" {
				return dig(s, "valueFrom").(string)
			}
		}
		return ""
	}
	if owner := secret(c); !(strings.HasPrefix(owner, "arn:aws:secretsmanager:") || strings.HasPrefix(owner, "arn:aws:ssm:")) || owner == secret(wc) {
		t.Errorf("the migration task's DATABASE_URL comes from %q, want the owner's secret, not the workers' %q", owner, secret(wc))
	}
	for _, k := range []string{"awslogs-group", "awslogs-region"} {
		if dig(c, "logConfiguration", "options", k) != dig(wc, "logConfiguration", "options", k) {
			t.Errorf("the migration task logs to another %s than the workers", k)
		}
	}
	if dig(c, "readonlyRootFilesystem") != true || dig(c, "user") != dig(wc, "user") {
		t.Error("the migration task's container is not read-only and non-root as the workers'")
	}
	// run-task starts that task in the workers' cluster and subnets.
	if dig(run, "taskDefinition") != dig(td, "family") || dig(run, "cluster") != dig(svc, "cluster") {
		t.Errorf("migrate-run-task.json runs %v in %v, want %v in %v", dig(run, "taskDefinition"), dig(run, "cluster"), dig(td, "family"), dig(svc, "cluster"))
	}
	if !equalYAML(dig(run, "networkConfiguration"), dig(svc, "networkConfiguration")) {
		t.Error("the migration task runs in other subnets or security groups than the workers")
	}
}

// TestECSRegionAndImage checks that every region the ECS files name is the
// workers' AWS_REGION, and that they run the image the Kubernetes files run.
func TestECSRegionAndImage(t *testing.T) {
	t.Parallel()
	td := readJSON(t, "ecs/task-definition.json")
	var region string
	for _, e := range dig(td, "containerDefinitions", 0, "environment").([]any) {
		if dig(e, "name") == "AWS_REGION" {
			region = dig(e, "value").(string)
		}
	}
	files, err := filepath.Glob("ecs/*.json")
	if err != nil || len(files) < 6 {
		t.Fatalf("ecs/*.json: %v, %d files", err, len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range awsRegion.FindAllString(string(b), -1) {
			if r != region {
				t.Errorf("%s names the region %s; the workers' AWS_REGION is %s", f, r, region)
			}
		}
	}
	for _, f := range []string{"ecs/task-definition.json", "ecs/migrate-task-definition.json"} {
		if img := dig(readJSON(t, f), "containerDefinitions", 0, "image"); img != exampleImage {
			t.Errorf("%s runs %v, want %s as every deployment file", f, img, exampleImage)
		}
	}
}

// TestECSInputsValidate runs the AWS CLI on each ECS input against an
// address where nothing listens: the CLI validates its input against the
// service's API model before it sends anything, so an unknown or mistyped
// field fails as "Parameter validation failed" and a valid input fails to
// connect.
func TestECSInputsValidate(t *testing.T) {
	t.Parallel()
	awsCLI, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the AWS CLI is not installed")
	}
	none := filepath.Join(t.TempDir(), "none")
	for file, cmd := range map[string][]string{
		"task-definition.json":         {"ecs", "register-task-definition"},
		"service.json":                 {"ecs", "create-service"},
		"scalable-target.json":         {"application-autoscaling", "register-scalable-target"},
		"scaling-policy.json":          {"application-autoscaling", "put-scaling-policy"},
		"migrate-task-definition.json": {"ecs", "register-task-definition"},
		"migrate-run-task.json":        {"ecs", "run-task"},
	} {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			path, err := filepath.Abs(filepath.Join("ecs", file))
			if err != nil {
				t.Fatal(err)
			}
			args := append(cmd, "--cli-input-json", "file://"+path, "--region", "eu-west-1",
				"--endpoint-url", "http://127.0.0.1:9", "--cli-connect-timeout", "1")
			c := exec.Command(awsCLI, args...)
			// Nothing of the caller's AWS setup: no profile, no real keys.
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "AWS_") {
					c.Env = append(c.Env, kv)
				}
			}
			c.Env = append(c.Env, "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x", "AWS_MAX_ATTEMPTS=1",
				"AWS_CONFIG_FILE="+none, "AWS_SHARED_CREDENTIALS_FILE="+none)
			out, _ := c.CombinedOutput()
			if !strings.Contains(string(out), "Could not connect to the endpoint URL") {
				t.Errorf("aws %s rejects %s:\n%s", strings.Join(cmd, " "), file, out)
			}
		})
	}
}

func TestIAMPolicy(t *testing.T) {
	t.Parallel()
	var policy struct {
		Version   string
		Statement []struct {
			Sid       string
			Effect    string
			Action    any
			Resource  any
			Condition map[string]map[string]any
		}
	}
	b, err := os.ReadFile("iam-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&policy); err != nil {
		t.Fatal(err)
	}
	if policy.Version != "2012-10-17" {
		t.Errorf("Version = %q", policy.Version)
	}
	list := func(v any) []string {
		switch v := v.(type) {
		case string:
			return []string{v}
		case []any:
			var out []string
			for _, s := range v {
				out = append(out, s.(string))
			}
			return out
		}
		t.Fatalf("%v is neither a string nor a list", v)
		return nil
	}
	var actions []string
	for _, s := range policy.Statement {
		if s.Effect != "Allow" {
			t.Errorf("%s: Effect %q", s.Sid, s.Effect)
		}
		for _, a := range list(s.Action) {
			if strings.Contains(a, "*") {
				t.Errorf("%s: wildcard action %s", s.Sid, a)
			}
			actions = append(actions, a)
		}
		for _, r := range list(s.Resource) {
			// ListPublicKeys has no resource-level permissions.
			if r == "*" && !slices.Equal(list(s.Action), []string{"cloudtrail:ListPublicKeys"}) {
				t.Errorf("%s: Resource *", s.Sid)
			}
			switch {
			case strings.HasPrefix(r, "arn:aws:sqs:"):
				if strings.ContainsAny(r, "*?") {
					t.Errorf("%s: queue ARN %s is a pattern; name the one queue", s.Sid, r)
				}
			case strings.HasPrefix(r, "arn:aws:sns:"):
				if strings.ContainsAny(r, "*?") {
					t.Errorf("%s: topic ARN %s is a pattern; name the one alert topic", s.Sid, r)
				}
			case strings.HasPrefix(r, "arn:aws:s3:::"):
				bucket, prefix, _ := strings.Cut(strings.TrimPrefix(r, "arn:aws:s3:::"), "/")
				if strings.Contains(bucket, "*") || !strings.Contains(prefix, "AWSLogs/") || strings.HasPrefix(prefix, "*") {
					t.Errorf("%s: %s is not under a trail's AWSLogs/ prefix", s.Sid, r)
				}
			}
		}
		if slices.Contains(list(s.Action), "kms:Decrypt") {
			if !strings.HasPrefix(fmtAny(s.Condition["StringEquals"]["kms:ViaService"]), "s3.") {
				t.Errorf("%s: kms:Decrypt without kms:ViaService s3.<region>.amazonaws.com", s.Sid)
			}
			var context bool
			for _, op := range s.Condition {
				for k := range op {
					context = context || strings.HasPrefix(k, "kms:EncryptionContext:")
				}
			}
			if !context {
				t.Errorf("%s: kms:Decrypt not limited by encryption context", s.Sid)
			}
		}
	}
	slices.Sort(actions)
	want := []string{"cloudtrail:ListPublicKeys", "kms:Decrypt", "s3:GetObject", "sns:Publish", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"}
	if !slices.Equal(actions, want) {
		t.Errorf("actions = %v, want exactly %v", actions, want)
	}
}

func fmtAny(v any) string {
	s, _ := v.(string)
	return s
}

func TestCompose(t *testing.T) {
	t.Parallel()
	docs := readYAML(t, filepath.Join(repoRoot, "docker-compose.yml"))
	services, _ := dig(docs[0], "services").(map[string]any)
	for _, name := range []string{"postgres", "localaws", "seed", "pgtrail-a", "pgtrail-b"} {
		if services[name] == nil {
			t.Errorf("no service %s", name)
		}
	}
	for _, name := range []string{"pgtrail-a", "pgtrail-b"} {
		s := services[name]
		if dig(s, "build", "target") != "pgtrail" {
			t.Errorf("%s does not build the pgtrail target", name)
		}
		grace, err := time.ParseDuration(dig(s, "environment", "PGTRAIL_SHUTDOWN_GRACE").(string))
		if err != nil {
			t.Fatal(err)
		}
		if stop := seconds(t, "stop_grace_period", dig(s, "stop_grace_period")); stop < grace+stopMargin {
			t.Errorf("%s: stop_grace_period %s, want at least %s", name, stop, grace+stopMargin)
		}
		if dig(s, "read_only") != true {
			t.Errorf("%s: root filesystem is writable", name)
		}
		if env := dig(s, "environment", "AWS_ENDPOINT_URL"); env != "http://localaws:4566" {
			t.Errorf("%s: AWS_ENDPOINT_URL = %v", name, env)
		}
	}
	// The seed job runs a script that exists.
	if _, err := os.Stat("compose/seed.sh"); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat("compose/aws-config"); err != nil {
		t.Error(err)
	}
	if dig(services["localaws"], "build", "target") != "localaws" {
		t.Error("localaws does not build the localaws target")
	}
}

// TestComposeLocalAWSFlags checks that every flag the compose file passes to
// localaws is one cmd/localaws defines.
func TestComposeLocalAWSFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/localaws")
	}
	t.Parallel()
	docs := readYAML(t, filepath.Join(repoRoot, "docker-compose.yml"))
	bin := filepath.Join(t.TempDir(), "localaws")
	build := exec.Command("go", "build", "-o", bin, "./cmd/localaws")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/localaws: %v\n%s", err, out)
	}
	help, _ := exec.Command(bin, "-h").CombinedOutput()
	defined := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllStringSubmatch(string(help), -1) {
		defined[m[1]] = true
	}
	if len(defined) == 0 {
		t.Fatalf("no flag in localaws -h:\n%s", help)
	}
	for _, arg := range dig(docs[0], "services", "localaws", "command").([]any) {
		s := arg.(string)
		if !strings.HasPrefix(s, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(s, "-"), "=")
		if !defined[name] {
			t.Errorf("docker-compose.yml passes %s to localaws, which defines no -%s", s, name)
		}
	}
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	// The last stage is the default image.
	stages := regexp.MustCompile(`(?m)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?`).FindAllStringSubmatch(text, -1)
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stages", len(stages))
	}
	last := stages[len(stages)-1]
	if last[2] != "pgtrail" {
		t.Errorf("the last (default) stage is %q, want pgtrail", last[2])
	}
	if !strings.Contains(last[1], "distroless/static") && last[1] != "scratch" {
		t.Errorf("the runtime image is %s, want distroless/static or scratch", last[1])
	}
	final := text[strings.LastIndex(text, "\nFROM "):]
	for _, want := range []string{"STOPSIGNAL SIGTERM", "EXPOSE 9090", `ENTRYPOINT ["/usr/local/bin/pgtrail"]`} {
		if !strings.Contains(final, want) {
			t.Errorf("the pgtrail stage lacks %s", want)
		}
	}
	if m := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindStringSubmatch(final); m == nil || strings.HasPrefix(m[1], "0") || strings.HasPrefix(m[1], "root") {
		t.Errorf("the pgtrail stage runs as %v, want a numeric non-root user", m)
	}
	// Multi-arch images are cross-compiled by the build stage, on the
	// builder's own platform, for the target's (docs/operations.md).
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "./cmd/pgtrail",
		"FROM --platform=$BUILDPLATFORM", "GOOS=$TARGETOS GOARCH=$TARGETARCH"} {
		if !strings.Contains(text, want) {
			t.Errorf("the build lacks %s", want)
		}
	}
	// The Go version of the build image is the module's.
	mod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if goLine == nil || !strings.Contains(text, "ARG GO_VERSION="+string(goLine[1])) {
		t.Errorf("the Dockerfile's GO_VERSION is not go.mod's go %s", goLine[1])
	}
	ignore, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "bin"} {
		if !slices.Contains(strings.Fields(string(ignore)), want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}
