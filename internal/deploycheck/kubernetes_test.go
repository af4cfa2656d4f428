package deploycheck

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/threadbox/threadbox/internal/testenv"
)

// serveShutdownBound is how long `threadbox serve` drains requests after
// SIGTERM (the shutdown context of api.Server.ListenAndServe).
const serveShutdownBound = 30 * time.Second

// objects is a rendered kustomization, decoded strictly into the Kubernetes
// API types.
type objects struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs        map[string]*policyv1.PodDisruptionBudget
	jobs        map[string]*batchv1.Job
	namespaces  map[string]*corev1.Namespace
}

// decodeStrict renders dir and decodes every object into its API type with
// unknown and duplicate fields refused. An object of a kind the checks do not
// know fails too: it would go unchecked.
func decodeStrict(t *testing.T, dir string) objects {
	t.Helper()
	docs, err := Kustomize(dir)
	if err != nil {
		t.Fatal(err)
	}
	o := objects{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{}, pdbs: map[string]*policyv1.PodDisruptionBudget{},
		jobs: map[string]*batchv1.Job{}, namespaces: map[string]*corev1.Namespace{},
	}
	for _, doc := range docs {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatal(err)
		}
		var err error
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			err = decodeInto(doc, o.deployments)
		case "v1 Service":
			err = decodeInto(doc, o.services)
		case "v1 ConfigMap":
			err = decodeInto(doc, o.configMaps)
		case "v1 Secret":
			err = decodeInto(doc, o.secrets)
		case "autoscaling/v2 HorizontalPodAutoscaler":
			err = decodeInto(doc, o.hpas)
		case "policy/v1 PodDisruptionBudget":
			err = decodeInto(doc, o.pdbs)
		case "batch/v1 Job":
			err = decodeInto(doc, o.jobs)
		case "v1 Namespace":
			err = decodeInto(doc, o.namespaces)
		default:
			t.Fatalf("%s: object of unchecked kind %s %s:\n%s", dir, tm.APIVersion, tm.Kind, doc)
		}
		if err != nil {
			t.Fatalf("%s: %s does not decode strictly: %v\n%s", dir, tm.Kind, err, doc)
		}
	}
	return o
}

// decodeInto decodes doc strictly into a new T and files it under its name.
func decodeInto[T any, PT interface {
	*T
	GetName() string
}](doc []byte, into map[string]PT) error {
	v := PT(new(T))
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		return err
	}
	into[v.GetName()] = v
	return nil
}

func kustomizeDir(t *testing.T, rel string) string {
	return filepath.Join(testenv.RepoRoot(t), "deploy", "kubernetes", rel)
}

// TestKubernetesManifestsDecodeStrictly renders the base and the example
// overlay and decodes every object into the Kubernetes API types.
func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	for _, dir := range []string{"base", "overlays/example"} {
		o := decodeStrict(t, kustomizeDir(t, dir))
		if len(o.deployments) != 2 || len(o.jobs) != 1 || len(o.hpas) != 1 || len(o.pdbs) != 2 || len(o.services) != 1 || len(o.configMaps) != 1 {
			t.Errorf("%s: unexpected set of objects: %d deployments, %d jobs, %d hpas, %d pdbs, %d services, %d configmaps",
				dir, len(o.deployments), len(o.jobs), len(o.hpas), len(o.pdbs), len(o.services), len(o.configMaps))
		}
	}
}

// TestStrictDecodingRefusesUnknownFields: the check above can fail.
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	doc := []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n")
	if err := yaml.UnmarshalStrict(doc, &appsv1.Deployment{}); err == nil {
		t.Fatal("a misspelt field decoded")
	}
}

// byComponent finds the one object whose component label is c.
func byComponent[T interface{ GetLabels() map[string]string }](t *testing.T, m map[string]T, c string) T {
	t.Helper()
	var found []T
	for _, v := range m {
		if v.GetLabels()["app.kubernetes.io/component"] == c {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects of component %s, want 1", len(found), c)
	}
	return found[0]
}

// TestKubernetesCrossReferences checks what a cluster would only reveal at run
// time: selectors, names, ports, configuration keys, probes and the
// termination budget agree with each other and with threadbox.
func TestKubernetesCrossReferences(t *testing.T) {
	o := decodeStrict(t, kustomizeDir(t, "overlays/example"))
	serve := byComponent(t, o.deployments, "serve")
	worker := byComponent(t, o.deployments, "worker")
	svc := byComponent(t, o.services, "serve")

	// Selectors: each workload selects its own pods, the Service and the
	// budgets select serve's (not the worker's), the HPA scales serve.
	for _, d := range []*appsv1.Deployment{serve, worker} {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("deployment %s does not select its own pods (%v)", d.Name, err)
		}
	}
	svcSel := labels.SelectorFromSet(svc.Spec.Selector)
	if len(svc.Spec.Selector) == 0 || !svcSel.Matches(labels.Set(serve.Spec.Template.Labels)) || svcSel.Matches(labels.Set(worker.Spec.Template.Labels)) {
		t.Errorf("service %s selector %v must select serve's pods and not the worker's", svc.Name, svc.Spec.Selector)
	}
	for _, pdb := range o.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, d := range o.deployments {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("pdb %s selects the pods of %d deployments, want 1", pdb.Name, n)
		}
	}
	hpa := byComponent(t, o.hpas, "serve")
	if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != serve.Name || ref.APIVersion != "apps/v1" {
		t.Errorf("hpa scales %+v, want deployment %s", ref, serve.Name)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 {
		t.Errorf("hpa must keep at least 2 serve replicas (the PDB lets one go)")
	}

	// Configuration: every envFrom names an object of the rendering, and
	// every key is a variable config.Config reads.
	known := ConfigNames()
	pods := map[string]corev1.PodSpec{serve.Name: serve.Spec.Template.Spec, worker.Name: worker.Spec.Template.Spec}
	for _, j := range o.jobs {
		pods[j.Name] = j.Spec.Template.Spec
	}
	env := map[string]map[string]string{} // pod → variable → value
	for name, pod := range pods {
		env[name] = map[string]string{}
		for _, c := range pod.Containers {
			if len(c.EnvFrom) == 0 {
				t.Errorf("%s/%s takes no configuration", name, c.Name)
			}
			for _, from := range c.EnvFrom {
				var data map[string]string
				switch {
				case from.ConfigMapRef != nil:
					cm, ok := o.configMaps[from.ConfigMapRef.Name]
					if !ok {
						t.Errorf("%s: configmap %s is not rendered", name, from.ConfigMapRef.Name)
						continue
					}
					data = cm.Data
				case from.SecretRef != nil:
					s, ok := o.secrets[from.SecretRef.Name]
					if !ok {
						t.Errorf("%s: secret %s is not rendered", name, from.SecretRef.Name)
						continue
					}
					data = s.StringData
					for k, v := range s.Data {
						data[k] = string(v)
					}
				}
				for k, v := range data {
					if !slices.Contains(known, k) {
						t.Errorf("%s: variable %s is not one config.Config reads", name, k)
					}
					env[name][k] = v
				}
			}
			for _, e := range c.Env {
				if !slices.Contains(known, e.Name) {
					t.Errorf("%s: variable %s is not one config.Config reads", name, e.Name)
				}
			}
		}
		for _, secret := range []string{"DAYTONA_API_KEY", "DATABASE_URL"} {
			if _, ok := env[name][secret]; !ok {
				t.Errorf("%s: %s is not configured", name, secret)
			}
		}
	}
	// The other way round: every variable is set for serve and worker, so a
	// new one reaches the manifests (and operators see every knob).
	for _, d := range []*appsv1.Deployment{serve, worker} {
		for _, name := range known {
			if _, ok := env[d.Name][name]; !ok {
				t.Errorf("%s: %s is not in the ConfigMap or the Secret", d.Name, name)
			}
		}
	}
	for _, cm := range o.configMaps {
		for _, secret := range []string{"DAYTONA_API_KEY", "DATABASE_URL"} {
			if _, ok := cm.Data[secret]; ok {
				t.Errorf("configmap %s holds the secret %s", cm.Name, secret)
			}
		}
	}

	// Ports: serve listens where its container port, probes, scrape
	// annotation and Service point; the worker's metrics likewise.
	checkPort := func(d *appsv1.Deployment, addrVar, portName string) {
		t.Helper()
		c := d.Spec.Template.Spec.Containers[0]
		_, port, err := net.SplitHostPort(env[d.Name][addrVar])
		if err != nil {
			t.Errorf("%s: %s=%q: %v", d.Name, addrVar, env[d.Name][addrVar], err)
			return
		}
		host, _, _ := net.SplitHostPort(env[d.Name][addrVar])
		if host != "0.0.0.0" && host != "" {
			t.Errorf("%s: %s must listen on every interface, not %q", d.Name, addrVar, host)
		}
		var cp *corev1.ContainerPort
		for i := range c.Ports {
			if c.Ports[i].Name == portName {
				cp = &c.Ports[i]
			}
		}
		if cp == nil || strconv.Itoa(int(cp.ContainerPort)) != port {
			t.Errorf("%s: container port %q must be %s (%s)", d.Name, portName, port, addrVar)
		}
		if a := d.Spec.Template.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != port || a["prometheus.io/path"] != "/metrics" {
			t.Errorf("%s: scrape annotations %v do not point at /metrics on %s", d.Name, a, port)
		}
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if p != nil && (p.HTTPGet == nil || p.HTTPGet.Port != intstr.FromString(portName)) {
				t.Errorf("%s: a probe does not use port %q", d.Name, portName)
			}
		}
	}
	checkPort(serve, "HTTP_ADDR", "http")
	checkPort(worker, "THREADBOX_WORKER_METRICS_ADDR", "metrics")
	if tp := svc.Spec.Ports[0].TargetPort; tp != intstr.FromString("http") {
		t.Errorf("service targets port %v, want serve's named port http", tp.String())
	}

	// Probes: readiness on /readyz, liveness on /healthz (the paths are
	// served: TestProbePathsAreServed).
	sc := serve.Spec.Template.Spec.Containers[0]
	if sc.ReadinessProbe == nil || sc.ReadinessProbe.HTTPGet.Path != ServeReadinessPath {
		t.Errorf("serve readiness probe must GET %s", ServeReadinessPath)
	}
	if sc.LivenessProbe == nil || sc.LivenessProbe.HTTPGet.Path != ServeLivenessPath {
		t.Errorf("serve liveness probe must GET %s", ServeLivenessPath)
	}
	if sc.ReadinessProbe != nil && sc.ReadinessProbe.TimeoutSeconds < 4 {
		t.Errorf("serve readiness timeout %ds is shorter than /readyz's own 3 s budget plus a margin", sc.ReadinessProbe.TimeoutSeconds)
	}
	if wc := worker.Spec.Template.Spec.Containers[0]; wc.LivenessProbe == nil || wc.LivenessProbe.HTTPGet.Path != WorkerLivenessPath {
		t.Errorf("worker liveness probe must GET %s", WorkerLivenessPath)
	}

	// Graceful termination: the grace period covers the preStop sleep and the
	// server's drain.
	var preStop time.Duration
	if sc.Lifecycle == nil || sc.Lifecycle.PreStop == nil || sc.Lifecycle.PreStop.Exec == nil {
		t.Fatal("serve has no preStop hook")
	}
	cmd := sc.Lifecycle.PreStop.Exec.Command
	if len(cmd) != 2 || cmd[0] != "sleep" {
		t.Fatalf("serve preStop %v, want [sleep N]", cmd)
	}
	secs, err := strconv.Atoi(cmd[1])
	if err != nil {
		t.Fatal(err)
	}
	preStop = time.Duration(secs) * time.Second
	grace := time.Duration(*serve.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	if grace < preStop+serveShutdownBound {
		t.Errorf("serve terminationGracePeriodSeconds %v < preStop %v + shutdown bound %v", grace, preStop, serveShutdownBound)
	}

	// Resources: every container asks for CPU and memory and caps memory.
	for name, pod := range pods {
		for _, c := range pod.Containers {
			r := c.Resources
			if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
				t.Errorf("%s/%s: resources %v must request CPU and memory and limit memory", name, c.Name, r)
			}
			if r.Limits.Memory().Cmp(*r.Requests.Memory()) < 0 {
				t.Errorf("%s/%s: memory limit below the request", name, c.Name)
			}
			if c.Image != "registry.example.com/threadbox:v0.1.0" {
				t.Errorf("%s/%s: image %q is not the overlay's", name, c.Name, c.Image)
			}
			if args := strings.Join(c.Args, " "); !slices.Contains([]string{"serve", "worker", "migrate"}, args) {
				t.Errorf("%s/%s: args %q are not a threadbox command", name, c.Name, args)
			}
		}
	}
	if j := o.jobs["threadbox-migrate"]; j == nil || fmt.Sprint(j.Spec.Template.Spec.Containers[0].Args) != "[migrate]" {
		t.Errorf("no migration Job running `threadbox migrate`")
	}
}
