package main

// Where the project's Python rules stop and Knative's begin (issue 15: "the project's own
// admission rules go where Knative's code covers them").
//
// TestKnativeRefuses holds the negative cases whose Python re-statement was removed from
// eas_runtime/manifests: Knative's SetDefaults/Validate refuse each one, with the field path and
// the words given. TestKnativeAdmits holds what Knative admits and the project still checks in
// Python (eas_runtime/manifests/serving_rules.py and admission.py), each with the reason. If a
// later Knative release starts refusing one of those, this test fails and the Python rule can go.

import (
	"strings"
	"testing"
)

func withAnnotation(extra string) string {
	return strings.Replace(serviceYAML("300", "5"), `autoscaling.knative.dev/max-scale: "5"`,
		`autoscaling.knative.dev/max-scale: "5"`+"\n        "+extra, 1)
}

func withConcurrency(value string) string {
	return strings.Replace(serviceYAML("300", "5"), "containerConcurrency: 1", "containerConcurrency: "+value, 1)
}

func brokerWith(delivery string) string {
	return "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: default, namespace: eas}\n" +
		"spec:\n  delivery: " + delivery + "\n"
}

const brokerSink = "  sink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}\n"

func pingWith(spec string) string {
	return "apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: tick, namespace: eas}\nspec:\n" + spec
}

func sinkBindingWith(spec string) string {
	return "apiVersion: sources.knative.dev/v1\nkind: SinkBinding\nmetadata: {name: eas-broker-sink, namespace: eas}\nspec:\n" + spec
}

const ann = "spec.template.metadata.annotations.autoscaling.knative.dev/"

func TestKnativeRefuses(t *testing.T) {
	cases := []struct{ name, yaml, path, want string }{
		// Serving: autoscaling annotation values, their combinations, per-revision limits.
		{"min-scale above max-scale", strings.Replace(serviceYAML("300", "2"), `min-scale: "0"`, `min-scale: "3"`, 1),
			ann + "max-scale, " + ann + "min-scale", "max-scale=2 is less than min-scale=3"},
		{"window too short", withAnnotation(`autoscaling.knative.dev/window: "2s"`), ann + "window", "expected 6s <= 2s <= 1h0m0s"},
		{"window not a duration", withAnnotation(`autoscaling.knative.dev/window: "1 minute"`), ann + "window", "invalid value: 1 minute"},
		{"activation-scale below 2", withAnnotation(`autoscaling.knative.dev/activation-scale: "1"`), ann + "activation-scale", "must be greater than 1"},
		{"activation-scale above max-scale", withAnnotation(`autoscaling.knative.dev/activation-scale: "9"`), ann + "activation-scale", "max-scale=5 is less than activation-scale=9"},
		{"unknown metric", withAnnotation(`autoscaling.knative.dev/metric: "latency"`), ann + "metric", "invalid value: latency"},
		{"cpu metric with the KPA", withAnnotation(`autoscaling.knative.dev/metric: "cpu"`), ann + "metric", "invalid value: cpu"},
		{"scale-down-delay above an hour", withAnnotation(`autoscaling.knative.dev/scale-down-delay: "2h"`), ann + "scale-down-delay", "expected 0s <= 2h <= 1h0m0s"},
		{"scale-down-delay below a second", withAnnotation(`autoscaling.knative.dev/scale-down-delay: "1500ms"`), ann + "scale-down-delay", "at most second precision"},
		{"negative pod retention", withAnnotation(`autoscaling.knative.dev/scale-to-zero-pod-retention-period: "-1s"`), ann + "scale-to-zero-pod-retention-period", "expected 0s <= -1s"},
		{"target zero", withAnnotation(`autoscaling.knative.dev/target: "0"`), ann + "target", "should be at least 0.01"},
		{"utilization above 100", withAnnotation(`autoscaling.knative.dev/target-utilization-percentage: "150"`), ann + "target-utilization-percentage", "expected 1 <= 150 <= 100"},
		{"burst capacity below -1", withAnnotation(`autoscaling.knative.dev/target-burst-capacity: "-2"`), ann + "target-burst-capacity", "invalid value: -2"},
		{"panic window zero", withAnnotation(`autoscaling.knative.dev/panic-window-percentage: "0"`), ann + "panic-window-percentage", "expected 1 <= 0 <= 100"},
		{"panic threshold below 110", withAnnotation(`autoscaling.knative.dev/panic-threshold-percentage: "50"`), ann + "panic-threshold-percentage", "expected 110 <= 50 <= 1000"},
		{"negative concurrency", withConcurrency("-1"), "spec.template.spec.containerConcurrency", "expected 0 <= -1 <= 1000"},
		{"concurrency above 1000", withConcurrency("1001"), "spec.template.spec.containerConcurrency", "expected 0 <= 1001 <= 1000"},
		{"negative timeout", serviceYAML("-1", "5"), "spec.template.spec.timeoutSeconds", "expected 0 <= -1 <= 600"},
		// Eventing: delivery, destinations, Triggers.
		{"misspelt backoffPolicy", brokerWith("{retry: 5, backoffPolicy: exponentail}"), "spec.delivery.backoffPolicy", "invalid value: exponentail"},
		{"negative retry", brokerWith("{retry: -1}"), "spec.delivery.retry", "invalid value: -1"},
		{"timeout zero", brokerWith("{timeout: PT0S}"), "spec.delivery.timeout", "invalid value: PT0S"},
		{"unknown format", brokerWith("{format: xml}"), "spec.delivery.format", "invalid value: xml"},
		{"retryAfterMax without its feature", brokerWith("{retryAfterMax: PT5S}"), "spec.delivery.retryAfterMax", "must not set the field(s)"},
		{"dead-letter sink without ref or uri", brokerWith("{deadLetterSink: {}}"),
			"spec.delivery.deadLetterSink.ref, spec.delivery.deadLetterSink.uri", "expected at least one, got none"},
		{"absolute uri next to ref", brokerWith("{deadLetterSink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: eas-control}, uri: 'http://x/dead-letter'}}"),
			"", "Absolute URI is not allowed when Ref"},
		{"relative uri without ref", brokerWith("{deadLetterSink: {uri: /dead-letter}}"), "spec.delivery.deadLetterSink.uri", "Relative URI is not allowed"},
		{"ref without name", brokerWith("{deadLetterSink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service}}}"), "spec.delivery.deadLetterSink.ref.name", "missing field(s)"},
		{"Trigger without broker", strings.Replace(triggerYAML(""), "  broker: default\n", "", 1), "spec.broker", "missing field(s)"},
		{"Trigger with an empty subscriber", strings.Replace(triggerYAML(""), "    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: eas-verify}\n", "    {}\n", 1),
			"spec.subscriber.ref, spec.subscriber.uri", "expected at least one, got none"},
		{"Trigger with two dialects in a nested filter", triggerYAML("  filters:\n    - any:\n        - exact: {type: a}\n          prefix: {type: org.}\n"), "", "multiple dialects found"},
		{"upper-case attribute in a filters dialect", triggerYAML("  filters:\n    - exact: {taskType: verify}\n"), "", "must start with a letter"},
		// Sources.
		{"not a cron schedule", pingWith("  schedule: every minute\n" + brokerSink), "spec.schedule", "invalid value"},
		{"@every schedule", pingWith("  schedule: '@every 5m'\n" + brokerSink), "spec.schedule", "unsupported descriptor @every"},
		{"data not JSON", pingWith("  schedule: '* * * * *'\n  contentType: application/json\n  data: 'reason: x'\n" + brokerSink), "spec.data", "invalid value"},
		{"data and dataBase64", pingWith("  schedule: '* * * * *'\n  data: '{}'\n  dataBase64: e30=\n" + brokerSink), "spec.data, spec.dataBase64", "expected exactly one, got both"},
		{"PingSource without sink", pingWith("  schedule: '* * * * *'\n"), "spec.sink.ref, spec.sink.uri", "expected at least one, got none"},
		{"subject by name and selector", sinkBindingWith("  subject: {apiVersion: serving.knative.dev/v1, kind: Service, name: x, selector: {matchLabels: {a: b}}}\n" + brokerSink),
			"spec.subject.name, spec.subject.selector", "expected exactly one, got both"},
		{"subject without kind", sinkBindingWith("  subject: {apiVersion: serving.knative.dev/v1, name: x}\n" + brokerSink), "spec.subject.kind", "missing field(s)"},
		{"sink without ref or uri", sinkBindingWith("  subject: {apiVersion: serving.knative.dev/v1, kind: Service, name: x}\n  sink: {}\n"),
			"spec.sink.ref, spec.sink.uri", "expected at least one, got none"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, fs := admit(t, nil, c.yaml)
			refused(t, fs, c.path, c.want)
		})
	}
}

func TestKnativeAdmits(t *testing.T) {
	cases := []struct{ name, yaml, why string }{
		{"initial-scale above max-scale", withAnnotation(`autoscaling.knative.dev/initial-scale: "9"`), "the revision never reaches its initial scale and stays unready"},
		{"an unknown autoscaling class", withAnnotation(`autoscaling.knative.dev/class: "kpa"`), "custom autoscalers may exist; this project runs only the KPA and HPA"},
		{"an unknown aggregation algorithm", withAnnotation(`autoscaling.knative.dev/metric-aggregation-algorithm: "mean"`), "the autoscaler falls back to its default silently"},
		{"a misspelt autoscaling annotation", withAnnotation(`autoscaling.knative.dev/maxscale: "3"`), "an unknown key is ignored: the typo goes unnoticed"},
		{"a cluster setting as an annotation", withAnnotation(`autoscaling.knative.dev/max-scale-limit: "3"`), "config-autoscaler settings do nothing on a revision"},
		{"exact with two attributes", triggerYAML("  filters:\n    - exact: {type: a, source: b}\n"), "Eventing's filter code then ignores the dialect"},
		{"an empty exact", triggerYAML("  filters:\n    - not: {exact: {}}\n"), "an empty dialect matches everything"},
		{"an empty any", triggerYAML("  filters:\n    - any: []\n"), "Eventing skips it and the Trigger takes every event"},
		{"an empty CESQL expression", triggerYAML("  filters:\n    - cesql: ''\n"), "an empty expression is skipped"},
		{"a null attribute value", triggerYAML("  filter:\n    attributes: {type: a, tasktype: null}\n"), "null reads as \"\", which matches any value"},
		{"filter beside filters", triggerYAML("  filter:\n    attributes: {type: a}\n  filters:\n    - exact: {type: a}\n"), "filter is then ignored"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, fs := admit(t, nil, c.yaml); len(errorsOf(fs)) != 0 {
				t.Errorf("Knative now refuses this (%v); the project's Python rule for it (%s) can go", errorsOf(fs), c.why)
			}
		})
	}
}
