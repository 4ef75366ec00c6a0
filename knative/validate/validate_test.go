package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

const service = `
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: eas-verify
  namespace: eas
  labels: {eas.plato/sink: broker}
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/min-scale: "0"
        autoscaling.knative.dev/max-scale: "%MAX%"
    spec:
      containerConcurrency: 1
      timeoutSeconds: %TIMEOUT%
      containers:
        - name: function
          image: registry.invalid/plato-eas/eas-verify:latest
          ports: [{name: http1, containerPort: 8080}]
`

func serviceYAML(timeout, maxScale string) string {
	return strings.NewReplacer("%TIMEOUT%", timeout, "%MAX%", maxScale).Replace(service)
}

const trigger = `
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: eas-verify, namespace: eas}
spec:
  broker: default
%FILTER%
  subscriber:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: eas-verify}
`

func triggerYAML(filter string) string { return strings.Replace(trigger, "%FILTER%", filter, 1) }

// admit loads the YAML documents and admits each with a stock cluster's configuration.
func admit(t *testing.T, cluster *Cluster, text string) ([]*Object, []Finding) {
	t.Helper()
	if cluster == nil {
		var err error
		if cluster, err = NewCluster(nil); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := Load("-", strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	var out []Finding
	for _, o := range objs {
		out = append(out, cluster.Admit(o)...)
	}
	return objs, out
}

func errorsOf(fs []Finding) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Level == "error" {
			out = append(out, f)
		}
	}
	return out
}

// refused asserts exactly one error, at path (when given), whose message contains want.
func refused(t *testing.T, fs []Finding, path, want string) {
	t.Helper()
	errs := errorsOf(fs)
	if len(errs) != 1 {
		t.Fatalf("want one error containing %q, got %v", want, fs)
	}
	if path != "" && errs[0].Path != path {
		t.Errorf("error at %q, want %q: %v", errs[0].Path, path, errs[0])
	}
	if !strings.Contains(errs[0].Message, want) {
		t.Errorf("error %q does not say %q", errs[0].Message, want)
	}
}

func TestServiceAdmittedAndDefaulted(t *testing.T) {
	objs, fs := admit(t, nil, serviceYAML("300", "5"))
	if len(errorsOf(fs)) != 0 {
		t.Fatalf("unexpected errors: %v", fs)
	}
	// Knative's warnings come through: this container sets no securityContext.
	if len(fs) != 1 || !strings.Contains(fs[0].Message, "Kubernetes default value is insecure") {
		t.Errorf("want Serving's securityContext warning, got %v", fs)
	}
	svc := objs[0].Typed.(*servingv1.Service)
	if objs[0].Checked != "serving" {
		t.Errorf("checked by %q", objs[0].Checked)
	}
	// SetDefaults ran: Serving fills in the readiness probe and the creator annotation.
	if svc.Spec.Template.Spec.Containers[0].ReadinessProbe == nil {
		t.Error("SetDefaults gave the container no readiness probe")
	}
	if svc.Annotations["serving.knative.dev/creator"] != admissionUser.Username {
		t.Errorf("no creator annotation: %v", svc.Annotations)
	}
}

func TestServiceTimeoutAboveTheMaximumIsRefused(t *testing.T) {
	_, fs := admit(t, nil, serviceYAML("3600", "5"))
	refused(t, fs, "spec.template.spec.timeoutSeconds", "expected 0 <= 3600 <= 600")
}

func TestServiceTimeoutAdmittedWhenTheClusterAllowsIt(t *testing.T) {
	cluster, err := NewCluster([]*corev1.ConfigMap{{
		ObjectMeta: metav1.ObjectMeta{Name: "config-defaults", Namespace: "knative-serving"},
		Data:       map[string]string{"max-revision-timeout-seconds": "7200"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, fs := admit(t, cluster, serviceYAML("3600", "5")); len(errorsOf(fs)) != 0 {
		t.Fatalf("refused with max-revision-timeout-seconds 7200: %v", fs)
	}
}

func TestBadAutoscalingAnnotationIsRefused(t *testing.T) {
	_, fs := admit(t, nil, serviceYAML("300", "many"))
	refused(t, fs, "spec.template.metadata.annotations.autoscaling.knative.dev/max-scale", "invalid value: many")
}

func TestMinScaleAboveMaxScaleIsRefused(t *testing.T) {
	text := strings.Replace(serviceYAML("300", "2"), `min-scale: "0"`, `min-scale: "3"`, 1)
	_, fs := admit(t, nil, text)
	if len(errorsOf(fs)) == 0 || !strings.Contains(errorsOf(fs)[0].Message, "max-scale=2 is less than min-scale=3") {
		t.Fatalf("min-scale above max-scale admitted: %v", fs)
	}
}

func TestMisspeltFieldIsRefused(t *testing.T) {
	text := strings.Replace(serviceYAML("300", "5"), "containerConcurrency", "containerConcurency", 1)
	_, fs := admit(t, nil, text)
	refused(t, fs, "", `unknown field "containerConcurency"`)
}

func TestTriggerFiltersAdmittedAndLabelled(t *testing.T) {
	objs, fs := admit(t, nil, triggerYAML("  filters:\n    - any:\n        - exact: {type: a}\n        - prefix: {type: org.plato.}\n"))
	if len(fs) != 0 {
		t.Fatalf("unexpected findings: %v", fs)
	}
	tr := objs[0].Typed.(*eventingv1.Trigger)
	if tr.Labels["eventing.knative.dev/broker"] != "default" {
		t.Errorf("SetDefaults did not label the Trigger with its Broker: %v", tr.Labels)
	}
}

func TestTriggerWithTwoDialectsInOneFilterIsRefused(t *testing.T) {
	_, fs := admit(t, nil, triggerYAML("  filters:\n    - exact: {type: a}\n      prefix: {type: b}\n"))
	refused(t, fs, "", "multiple dialects found")
}

func TestTriggerWithAnUnknownDialectIsRefused(t *testing.T) {
	_, fs := admit(t, nil, triggerYAML("  filters:\n    - regex: {type: a.*}\n"))
	refused(t, fs, "", `unknown field "regex"`)
}

func TestTriggerWithABadCESQLExpressionIsRefused(t *testing.T) {
	_, fs := admit(t, nil, triggerYAML("  filters:\n    - cesql: \"type = = 'a'\"\n"))
	refused(t, fs, "spec.filters[0].cesql", "invalid value")
}

func TestFilterThatEventingSkipsIsAnError(t *testing.T) {
	// Knative admits an empty "any"; its filter code then drops it, so this Trigger would
	// take every event.
	objs, fs := admit(t, nil, triggerYAML("  filters:\n    - any: []\n"))
	if len(errorsOf(fs)) != 0 {
		t.Fatalf("Knative refused what it is known to admit: %v", fs)
	}
	tr := objs[0].Typed.(*eventingv1.Trigger)
	if !Delivered(t.Context(), tr, event(t, "anything", nil)) {
		t.Fatal("expected Eventing to deliver everything through an empty any")
	}
	refused(t, SkippedFilters(objs[0], tr), "spec.filters[0]", "skips this filter")
	nested := triggers(t, triggerYAML("  filters:\n    - not:\n        all:\n          - exact: {type: \"\"}\n"))
	if got := SkippedFilters(objs[0], nested[0]); len(got) != 1 || got[0].Path != "spec.filters[0].not.all[0]" {
		t.Errorf("nested skipped filter not found: %v", got)
	}
}

func TestTriggerWithAnUppercaseAttributeIsRefused(t *testing.T) {
	_, fs := admit(t, nil, triggerYAML("  filter:\n    attributes: {type: a, taskType: verify}\n"))
	refused(t, fs, "spec.filter.attributes[taskType]", "Attribute name must start with a letter")
}

func TestBrokerWithABadBackoffDelayIsRefused(t *testing.T) {
	_, fs := admit(t, nil, `
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: eas}
spec:
  delivery: {retry: 5, backoffPolicy: exponential, backoffDelay: half a second}
`)
	refused(t, fs, "spec.delivery.backoffDelay", "invalid value")
}

func TestPingSourceWithABadScheduleIsRefused(t *testing.T) {
	_, fs := admit(t, nil, `
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: tick, namespace: eas}
spec:
  schedule: every minute
  sink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}
`)
	refused(t, fs, "spec.schedule", "invalid value")
}

func TestUnknownKnativeKindIsNotPassedSilently(t *testing.T) {
	_, fs := admit(t, nil, "apiVersion: sinks.knative.dev/v1alpha1\nkind: JobSink\nmetadata: {name: j}\n")
	refused(t, fs, "", "does not check")
}

func TestKubernetesObjectsAreDecodedStrictly(t *testing.T) {
	_, fs := admit(t, nil, "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringdata: {a: b}\n")
	refused(t, fs, "", `unknown field "stringdata"`)
}

func TestListsAreExpanded(t *testing.T) {
	docs, err := SplitYAML(strings.NewReader(`[{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}]
---
apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: Namespace, metadata: {name: b}}
  - {apiVersion: v1, kind: Namespace, metadata: {name: c}}
`))
	if err != nil || len(docs) != 3 {
		t.Fatalf("want 3 documents, got %d (%v)", len(docs), err)
	}
}

// ------------------------------------------------------------------ routing

func event(t *testing.T, typ string, ext map[string]string) cloudevents.Event {
	t.Helper()
	e := cloudevents.NewEvent()
	e.SetID("1")
	e.SetSource("/eas/control")
	e.SetType(typ)
	for k, v := range ext {
		e.SetExtension(k, v)
	}
	return e
}

func triggers(t *testing.T, text string) []*eventingv1.Trigger {
	t.Helper()
	objs, fs := admit(t, nil, text)
	if len(fs) != 0 {
		t.Fatalf("unexpected findings: %v", fs)
	}
	var out []*eventingv1.Trigger
	for _, o := range objs {
		out = append(out, o.Typed.(*eventingv1.Trigger))
	}
	return out
}

func TestAttributesFilterRoutesByTaskType(t *testing.T) {
	ts := triggers(t, triggerYAML("  filter:\n    attributes: {type: org.plato.eas.task.ready, tasktype: verify}\n"))
	cases := []struct {
		name string
		ev   cloudevents.Event
		want bool
	}{
		{"its task type", event(t, "org.plato.eas.task.ready", map[string]string{"tasktype": "verify"}), true},
		{"another task type", event(t, "org.plato.eas.task.ready", map[string]string{"tasktype": "detrend"}), false},
		{"no task type", event(t, "org.plato.eas.task.ready", nil), false},
		{"a prefix of it", event(t, "org.plato.eas.task.ready", map[string]string{"tasktype": "verif"}), false},
		{"another event type", event(t, "org.plato.eas.task.finished", map[string]string{"tasktype": "verify"}), false},
	}
	for _, c := range cases {
		if got := Delivered(t.Context(), ts[0], c.ev); got != c.want {
			t.Errorf("%s: delivered %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSubscriptionsAPIFiltersRoute(t *testing.T) {
	ts := triggers(t, triggerYAML("  filters:\n    - any:\n        - exact: {type: org.plato.eas.task.finished}\n        - exact: {type: org.plato.eas.task.failed}\n"))
	if !Delivered(t.Context(), ts[0], event(t, "org.plato.eas.task.failed", nil)) {
		t.Error("task.failed not delivered")
	}
	if Delivered(t.Context(), ts[0], event(t, "org.plato.eas.task.ready", nil)) {
		t.Error("task.ready delivered to the task.finished/failed Trigger")
	}
}

func TestTriggerWithoutFilterTakesEverything(t *testing.T) {
	ts := triggers(t, triggerYAML(""))
	if !Delivered(t.Context(), ts[0], event(t, "anything", nil)) {
		t.Error("a Trigger without filter must take every event")
	}
}

func TestRouteExpectations(t *testing.T) {
	ts := triggers(t, triggerYAML("  filter:\n    attributes: {type: org.plato.eas.task.ready, tasktype: verify}\n")+"---\n"+
		strings.Replace(triggerYAML(""), "name: eas-verify, namespace", "name: catch-all, namespace", 1))
	ready := event(t, "org.plato.eas.task.ready", map[string]string{"tasktype": "verify"})
	routes := RouteEvents(ts, "eas", "default", []CatalogueEvent{
		{Name: "two subscribers", Event: ready, Expect: ExpectOne},
		{Name: "unrouted but routed", Event: ready, Expect: ExpectNone, Reason: "r"},
		{Name: "some", Event: ready, Expect: ExpectSome},
	})
	if !strings.Contains(routes[0].Problem, "reaches 2 Triggers") {
		t.Errorf("two Triggers for one task.ready not refused: %+v", routes[0])
	}
	if !strings.Contains(routes[1].Problem, "listed as unrouted") {
		t.Errorf("an unrouted event that is routed not refused: %+v", routes[1])
	}
	if routes[2].Problem != "" {
		t.Errorf("at-least-one refused: %+v", routes[2])
	}
	single := RouteEvents(ts[:1], "eas", "default", []CatalogueEvent{
		{Name: "wrong subscriber", Event: ready, Expect: ExpectOne, Subscriber: "Service/eas-detrend"},
	})
	if !strings.Contains(single[0].Problem, "expected Service/eas-detrend") {
		t.Errorf("wrong subscriber not refused: %+v", single[0])
	}
}

// ------------------------------------------------------------------ references

const brokerWithDeadLetters = `
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: eas}
spec:
  delivery:
    deadLetterSink: %DLS%
---
apiVersion: sources.knative.dev/v1
kind: SinkBinding
metadata: {name: eas-broker-sink, namespace: eas}
spec:
  subject:
    apiVersion: serving.knative.dev/v1
    kind: Service
    selector: {matchLabels: {eas.plato/sink: broker}}
  sink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}
`

func TestDeadLetterSinkOnASinkBoundServiceIsACycle(t *testing.T) {
	text := serviceYAML("300", "5") + "---\n" + strings.Replace(brokerWithDeadLetters, "%DLS%",
		"{ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: eas-verify}, uri: /dead-letter}", 1)
	objs, fs := admit(t, nil, text)
	refs, edges := References(objs, false)
	if len(errorsOf(fs))+len(refs) != 0 {
		t.Fatalf("unexpected findings: %v %v", fs, refs)
	}
	cycles := Cycles(edges)
	if len(cycles) != 1 || len(cycles[0]) != 2 {
		t.Fatalf("want the Broker <-> Service cycle, got %v", cycles)
	}
	// An absolute URI needs no address from the cluster: no cycle.
	text = serviceYAML("300", "5") + "---\n" + strings.Replace(brokerWithDeadLetters, "%DLS%",
		"{uri: 'http://eas-verify.eas.svc.cluster.local/dead-letter'}", 1)
	objs, _ = admit(t, nil, text)
	if _, edges = References(objs, false); len(Cycles(edges)) != 0 {
		t.Fatalf("a URI dead-letter sink makes a cycle: %v", Cycles(edges))
	}
}

func TestMissingSubscriberIsAnError(t *testing.T) {
	objs, _ := admit(t, nil, triggerYAML(""))
	refs, _ := References(objs, false)
	if len(errorsOf(refs)) != 2 { // the Broker and the Service are both missing
		t.Fatalf("want 2 reference errors, got %v", refs)
	}
	if refs, _ = References(objs, true); len(errorsOf(refs)) != 0 {
		t.Fatalf("-allow-external-refs still errs: %v", refs)
	}
}

// ------------------------------------------------------------------ the repository

// TestRepositoryManifests runs the command over the project's own overlays, broker
// configuration and storage, as `just knative-validate` does (without the event catalogue,
// which the Python code writes: tests/deploy/test_knative_validation.py routes it).
func TestRepositoryManifests(t *testing.T) {
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, "broker_config", "kustomization.yaml")); err != nil {
		t.Skip("not inside the repository")
	}
	var out, errOut bytes.Buffer
	args := []string{"-json", "-", "-q"}
	for _, p := range []string{"knative/overlays/laptop", "knative/overlays/cluster", "broker_config", "storage"} {
		args = append(args, filepath.Join(root, p))
	}
	if code := run(args, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s %s", code, errOut.String(), out.String())
	}
	var report Report
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, o := range report.Objects {
		counts[o.Checked]++
	}
	if counts["serving"] < 2*19 || counts["eventing"] < 23 || counts[""] != 0 {
		t.Errorf("objects checked: %v", counts)
	}
}
