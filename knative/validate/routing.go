package main

// Routing: which Triggers of the Broker each event reaches, decided by Eventing's own filter
// code (the attributes filter for spec.filter, the Subscriptions API filters for spec.filters),
// chosen as the Broker's filter handler chooses (pkg/broker/filter, Handler.filterEvent).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.uber.org/zap"

	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/eventfilter"
	"knative.dev/eventing/pkg/eventfilter/attributes"
	"knative.dev/eventing/pkg/eventfilter/subscriptionsapi"
	"knative.dev/pkg/logging"
)

// Expectations of an event's route.
const (
	ExpectOne  = "exactly-one"  // reaches exactly one Trigger (and its named subscriber)
	ExpectSome = "at-least-one" // reaches one Trigger or more
	ExpectNone = "none"         // intentionally unrouted: Reason says why
)

// CatalogueEvent is one event the project sends, as its code makes it.
type CatalogueEvent struct {
	Name       string            `json:"name"`
	Event      cloudevents.Event `json:"event"`
	Expect     string            `json:"expect"`
	Subscriber string            `json:"subscriber,omitempty"` // "Kind/name" of the only subscriber
	Reason     string            `json:"reason,omitempty"`
}

// Catalogue is the file given with --events.
type Catalogue struct {
	Broker string           `json:"broker,omitempty"` // "namespace/name"; default: the one Broker
	Events []CatalogueEvent `json:"events"`
}

// ReadCatalogue reads and checks a catalogue file.
func ReadCatalogue(path string) (*Catalogue, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Catalogue
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i, e := range c.Events {
		if err := e.Event.Validate(); err != nil {
			return nil, fmt.Errorf("%s: events[%d] (%s): not a valid CloudEvent: %w", path, i, e.Name, err)
		}
		switch e.Expect {
		case ExpectOne, ExpectSome:
		case ExpectNone:
			if e.Reason == "" {
				return nil, fmt.Errorf("%s: events[%d] (%s): an unrouted event needs a reason", path, i, e.Name)
			}
		default:
			return nil, fmt.Errorf("%s: events[%d] (%s): expect must be %s, %s or %s, not %q",
				path, i, e.Name, ExpectOne, ExpectSome, ExpectNone, e.Expect)
		}
	}
	return &c, nil
}

// Route is where one event went.
type Route struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	TaskType    string   `json:"tasktype,omitempty"`
	Triggers    []string `json:"triggers"`
	Subscribers []string `json:"subscribers"`
	Expect      string   `json:"expect"`
	Reason      string   `json:"reason,omitempty"`
	Problem     string   `json:"problem,omitempty"`
}

// FilterEvent is the Broker filter handler's decision for one Trigger (Handler.filterEvent):
// spec.filters when it has any, else spec.filter, else no filter.
func FilterEvent(ctx context.Context, t *eventingv1.Trigger, event cloudevents.Event) eventfilter.FilterResult {
	switch {
	case len(t.Spec.Filters) > 0:
		f := subscriptionsapi.CreateSubscriptionsAPIFilters(zap.NewNop(), t.Spec.Filters)
		defer f.Cleanup()
		return f.Filter(ctx, event)
	case t.Spec.Filter != nil:
		return attributes.NewAttributesFilter(t.Spec.Filter.Attributes).Filter(ctx, event)
	default:
		return eventfilter.NoFilter
	}
}

// Delivered reports whether the Broker hands event to t's subscriber (only a failed filter
// stops it: the handler delivers on PassFilter and NoFilter).
func Delivered(ctx context.Context, t *eventingv1.Trigger, event cloudevents.Event) bool {
	return FilterEvent(ctx, t, event) != eventfilter.FailFilter
}

// SubscriberName names a Trigger's subscriber as "Kind/name" (or its URI).
func SubscriberName(t *eventingv1.Trigger) string {
	d := t.Spec.Subscriber
	switch {
	case d.Ref != nil && d.URI != nil:
		return d.Ref.Kind + "/" + d.Ref.Name + d.URI.String()
	case d.Ref != nil:
		return d.Ref.Kind + "/" + d.Ref.Name
	case d.URI != nil:
		return d.URI.String()
	}
	return "(none)"
}

// RouteEvents sends every catalogue event through the Triggers of broker (defaulted by
// Eventing's SetDefaults, as the Broker sees them) and checks the expectations.
func RouteEvents(triggers []*eventingv1.Trigger, brokerNS, brokerName string, events []CatalogueEvent) []Route {
	ctx := logging.WithLogger(context.Background(), zap.NewNop().Sugar())
	var mine []*eventingv1.Trigger
	for _, t := range triggers {
		if t.Namespace == brokerNS && t.Spec.Broker == brokerName {
			mine = append(mine, t)
		}
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].Name < mine[j].Name })
	var out []Route
	for _, e := range events {
		r := Route{Name: e.Name, Type: e.Event.Type(), Expect: e.Expect, Reason: e.Reason,
			Triggers: []string{}, Subscribers: []string{}}
		if v, ok := e.Event.Extensions()["tasktype"]; ok {
			r.TaskType = fmt.Sprint(v)
		}
		for _, t := range mine {
			if Delivered(ctx, t, e.Event) {
				r.Triggers = append(r.Triggers, t.Name)
				r.Subscribers = append(r.Subscribers, SubscriberName(t))
			}
		}
		switch n := len(r.Triggers); {
		case e.Expect == ExpectOne && n != 1:
			r.Problem = fmt.Sprintf("reaches %d Triggers, expected exactly one", n)
		case e.Expect == ExpectOne && e.Subscriber != "" && r.Subscribers[0] != e.Subscriber:
			r.Problem = fmt.Sprintf("reaches %s, expected %s", r.Subscribers[0], e.Subscriber)
		case e.Expect == ExpectSome && n == 0:
			r.Problem = "reaches no Trigger"
		case e.Expect == ExpectNone && n != 0:
			r.Problem = fmt.Sprintf("listed as unrouted (%s) but reaches %s", e.Reason, strings.Join(r.Triggers, ", "))
		}
		out = append(out, r)
	}
	return out
}

// IdleTriggers are the Triggers of the broker that no catalogue event reaches.
func IdleTriggers(triggers []*eventingv1.Trigger, brokerNS, brokerName string, routes []Route) []string {
	used := map[string]bool{}
	for _, r := range routes {
		for _, t := range r.Triggers {
			used[t] = true
		}
	}
	out := []string{}
	for _, t := range triggers {
		if t.Namespace == brokerNS && t.Spec.Broker == brokerName && !used[t.Name] {
			out = append(out, t.Name)
		}
	}
	sort.Strings(out)
	return out
}

// SkippedFilters finds the entries of a Trigger's spec.filters that Eventing's filter code
// cannot materialize and therefore skips without a word (an empty all/any, an empty value):
// the webhook admits them, and the Trigger then takes more events than it says.
func SkippedFilters(o *Object, t *eventingv1.Trigger) []Finding {
	logger := zap.NewNop()
	var out []Finding
	var check func(where string, f eventingv1.SubscriptionsAPIFilter)
	list := func(path string, fs []eventingv1.SubscriptionsAPIFilter) {
		for i, f := range fs {
			check(fmt.Sprintf("%s[%d]", path, i), f)
		}
	}
	check = func(where string, f eventingv1.SubscriptionsAPIFilter) {
		if subscriptionsapi.MaterializeSubscriptionsAPIFilter(logger, f) == nil {
			out = append(out, Finding{Source: o.Source, Kind: o.GVK.Kind, Namespace: o.Namespace,
				Name: o.Name, Path: where, Level: "error",
				Message: "Eventing's filter code skips this filter (it names no condition), so the Trigger takes events it does not mean to"})
			return
		}
		list(where+".all", f.All)
		list(where+".any", f.Any)
		if f.Not != nil {
			check(where+".not", *f.Not)
		}
	}
	list("spec.filters", t.Spec.Filters)
	return out
}
