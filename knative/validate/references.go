package main

// References between the objects, read from Knative's typed (defaulted) objects: every
// destination (a Trigger's broker and subscriber, a dead-letter sink, a source's sink) and every
// SinkBinding subject must be among the inputs; and the "waits for the address of" relation
// they make must have no cycle, or none of the objects on it becomes Ready first.

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
)

// edge: From cannot work before To has an address, because of Why.
type edge struct {
	From, To string
	Why      string
}

type index struct {
	byKey  map[string]*Object // "Kind namespace/name"
	labels map[string]map[string]string
}

func kindKey(kind, namespace, name string) string { return kind + " " + namespace + "/" + name }

func newIndex(objs []*Object) *index {
	ix := &index{byKey: map[string]*Object{}, labels: map[string]map[string]string{}}
	for _, o := range objs {
		ix.byKey[o.Key()] = o
		var meta struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		if err := json.Unmarshal(o.Raw, &meta); err == nil {
			ix.labels[o.Key()] = meta.Metadata.Labels
		}
	}
	return ix
}

// References checks every reference and returns the findings and the dependency edges.
func References(objs []*Object, allowExternal bool) ([]Finding, []edge) {
	ix := newIndex(objs)
	var out []Finding
	var edges []edge
	level := "error"
	if allowExternal {
		level = "warning"
	}
	ref := func(o *Object, path, kind, apiVersion, ns, name, why string) {
		if ns == "" {
			ns = o.Namespace
		}
		target := kindKey(kind, ns, name)
		t, ok := ix.byKey[target]
		if !ok || (apiVersion != "" && t.GVK.GroupVersion().String() != apiVersion) {
			out = append(out, Finding{Source: o.Source, Kind: o.GVK.Kind, Namespace: o.Namespace,
				Name: o.Name, Path: path, Level: level,
				Message: fmt.Sprintf("refers to %s %s, which is not among the objects checked", apiVersion, target)})
			return
		}
		edges = append(edges, edge{From: o.Key(), To: target, Why: why})
	}
	dest := func(o *Object, path string, d *duckv1.Destination, why string) {
		if d != nil && d.Ref != nil {
			ref(o, path+".ref", d.Ref.Kind, d.Ref.APIVersion, d.Ref.Namespace, d.Ref.Name, why)
		}
	}
	delivery := func(o *Object, path string, d *eventingduckv1.DeliverySpec) {
		if d != nil {
			dest(o, path+".deadLetterSink", d.DeadLetterSink, "its dead-letter sink")
		}
	}
	for _, o := range objs {
		switch t := o.Typed.(type) {
		case *eventingv1.Broker:
			delivery(o, "spec.delivery", t.Spec.Delivery)
		case *eventingv1.Trigger:
			if t.Spec.Broker != "" {
				ref(o, "spec.broker", "Broker", eventingv1.SchemeGroupVersion.String(), o.Namespace, t.Spec.Broker, "its Broker")
			}
			dest(o, "spec.subscriber", &t.Spec.Subscriber, "its subscriber")
			delivery(o, "spec.delivery", t.Spec.Delivery)
		case *sourcesv1.PingSource:
			dest(o, "spec.sink", &t.Spec.Sink, "its sink")
		case *sourcesv1.ContainerSource:
			dest(o, "spec.sink", &t.Spec.Sink, "its sink")
		case *sourcesv1.ApiServerSource:
			dest(o, "spec.sink", &t.Spec.Sink, "its sink")
		case *sourcesv1.SinkBinding:
			subjects := sinkBindingSubjects(ix, o, t)
			if len(subjects) == 0 {
				out = append(out, Finding{Source: o.Source, Kind: o.GVK.Kind, Namespace: o.Namespace,
					Name: o.Name, Path: "spec.subject", Level: level,
					Message: "selects none of the objects checked"})
			}
			if t.Spec.Sink.Ref != nil {
				sinkNS := t.Spec.Sink.Ref.Namespace
				if sinkNS == "" {
					sinkNS = o.Namespace
				}
				sink := kindKey(t.Spec.Sink.Ref.Kind, sinkNS, t.Spec.Sink.Ref.Name)
				dest(o, "spec.sink", &t.Spec.Sink, "its sink")
				for _, s := range subjects {
					edges = append(edges, edge{From: s, To: sink,
						Why: "K_SINK, injected by SinkBinding " + o.Name + " before its first revision runs"})
				}
			}
		}
	}
	return out, edges
}

func sinkBindingSubjects(ix *index, o *Object, t *sourcesv1.SinkBinding) []string {
	s := t.Spec.Subject
	ns := s.Namespace
	if ns == "" {
		ns = o.Namespace
	}
	gv, err := schema.ParseGroupVersion(s.APIVersion)
	if err != nil {
		return nil
	}
	var out []string
	for key, obj := range ix.byKey {
		if obj.GVK.Kind != s.Kind || obj.GVK.GroupVersion() != gv || obj.Namespace != ns {
			continue
		}
		if s.Name != "" && obj.Name == s.Name {
			out = append(out, key)
		} else if s.Selector != nil {
			sel, err := metav1.LabelSelectorAsSelector(s.Selector)
			if err == nil && sel.Matches(labels.Set(ix.labels[key])) {
				out = append(out, key)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Cycles finds the circles of "cannot work before the other has an address", each once,
// starting from its smallest object.
func Cycles(edges []edge) [][]edge {
	next := map[string][]edge{}
	for _, e := range edges {
		next[e.From] = append(next[e.From], e)
	}
	var nodes []string
	for n := range next {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	seen := map[string]bool{}
	var out [][]edge
	var walk func(start, at string, path []edge, on map[string]bool)
	walk = func(start, at string, path []edge, on map[string]bool) {
		for _, e := range next[at] {
			if e.To == start {
				c := append(append([]edge{}, path...), e)
				sig := cycleSignature(c)
				if !seen[sig] {
					seen[sig] = true
					out = append(out, c)
				}
				continue
			}
			if on[e.To] || e.To < start {
				continue
			}
			on[e.To] = true
			walk(start, e.To, append(path, e), on)
			delete(on, e.To)
		}
	}
	for _, n := range nodes {
		walk(n, n, nil, map[string]bool{n: true})
	}
	return out
}

func cycleSignature(c []edge) string {
	var parts []string
	for _, e := range c {
		parts = append(parts, e.From+"->"+e.To)
	}
	sort.Strings(parts)
	return strings.Join(parts, ";")
}

// DescribeCycle says a cycle in one line.
func DescribeCycle(c []edge) string {
	var b strings.Builder
	for i, e := range c {
		if i == 0 {
			b.WriteString(e.From)
		}
		fmt.Fprintf(&b, " -(%s)-> %s", e.Why, e.To)
	}
	return b.String()
}
