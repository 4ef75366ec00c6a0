package main

// Admission: each Knative object is decoded into Knative's own Go type and put through
// SetDefaults then Validate, with the contexts the admission webhooks of Serving and Eventing
// build (within create, a user, the ConfigMaps of knative-serving / knative-eventing).

import (
	"context"
	"fmt"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
	"knative.dev/pkg/apis"
	knjson "knative.dev/pkg/webhook/json"

	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	eventingv1alpha1 "knative.dev/eventing/pkg/apis/eventing/v1alpha1"
	eventingv1beta2 "knative.dev/eventing/pkg/apis/eventing/v1beta2"
	flowsv1 "knative.dev/eventing/pkg/apis/flows/v1"
	messagingv1 "knative.dev/eventing/pkg/apis/messaging/v1"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	sourcesv1beta2 "knative.dev/eventing/pkg/apis/sources/v1beta2"

	autoscalingv1alpha1 "knative.dev/serving/pkg/apis/autoscaling/v1alpha1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	servingv1beta1 "knative.dev/serving/pkg/apis/serving/v1beta1"
)

// knativeObject is what the webhooks need of a type (resourcesemantics.GenericCRD without
// the owner-reference part).
type knativeObject interface {
	runtime.Object
	apis.Defaultable
	apis.Validatable
}

// servingTypes are the kinds Serving's webhook defaults and validates (cmd/webhook of
// knative.dev/serving, less the networking kinds that only Serving's controllers write).
var servingTypes = map[schema.GroupVersionKind]knativeObject{
	servingv1.SchemeGroupVersion.WithKind("Service"):                 &servingv1.Service{},
	servingv1.SchemeGroupVersion.WithKind("Configuration"):           &servingv1.Configuration{},
	servingv1.SchemeGroupVersion.WithKind("Route"):                   &servingv1.Route{},
	servingv1.SchemeGroupVersion.WithKind("Revision"):                &servingv1.Revision{},
	servingv1beta1.SchemeGroupVersion.WithKind("DomainMapping"):      &servingv1beta1.DomainMapping{},
	autoscalingv1alpha1.SchemeGroupVersion.WithKind("PodAutoscaler"): &autoscalingv1alpha1.PodAutoscaler{},
	autoscalingv1alpha1.SchemeGroupVersion.WithKind("Metric"):        &autoscalingv1alpha1.Metric{},
}

// eventingTypes are the kinds Eventing's webhook defaults and validates (cmd/webhook of
// knative.dev/eventing), less those whose validation needs a live cluster (JobSink,
// IntegrationSink/Source, RequestReply): such an object is reported as not checked.
var eventingTypes = map[schema.GroupVersionKind]knativeObject{
	eventingv1.SchemeGroupVersion.WithKind("Broker"):               &eventingv1.Broker{},
	eventingv1.SchemeGroupVersion.WithKind("Trigger"):              &eventingv1.Trigger{},
	eventingv1beta2.SchemeGroupVersion.WithKind("EventType"):       &eventingv1beta2.EventType{},
	eventingv1alpha1.SchemeGroupVersion.WithKind("EventPolicy"):    &eventingv1alpha1.EventPolicy{},
	eventingv1alpha1.SchemeGroupVersion.WithKind("EventTransform"): &eventingv1alpha1.EventTransform{},
	messagingv1.SchemeGroupVersion.WithKind("Channel"):             &messagingv1.Channel{},
	messagingv1.SchemeGroupVersion.WithKind("InMemoryChannel"):     &messagingv1.InMemoryChannel{},
	messagingv1.SchemeGroupVersion.WithKind("Subscription"):        &messagingv1.Subscription{},
	sourcesv1.SchemeGroupVersion.WithKind("PingSource"):            &sourcesv1.PingSource{},
	sourcesv1beta2.SchemeGroupVersion.WithKind("PingSource"):       &sourcesv1beta2.PingSource{},
	sourcesv1.SchemeGroupVersion.WithKind("SinkBinding"):           &sourcesv1.SinkBinding{},
	sourcesv1.SchemeGroupVersion.WithKind("ApiServerSource"):       &sourcesv1.ApiServerSource{},
	sourcesv1.SchemeGroupVersion.WithKind("ContainerSource"):       &sourcesv1.ContainerSource{},
	flowsv1.SchemeGroupVersion.WithKind("Sequence"):                &flowsv1.Sequence{},
	flowsv1.SchemeGroupVersion.WithKind("Parallel"):                &flowsv1.Parallel{},
}

// Finding is one problem (or warning) with one object.
type Finding struct {
	Source    string `json:"source"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Path      string `json:"path,omitempty"`
	Message   string `json:"message"`
	Level     string `json:"level"` // "error" or "warning"
}

func (f Finding) String() string {
	where := f.Kind + "/" + f.Name
	if f.Namespace != "" {
		where = f.Kind + " " + f.Namespace + "/" + f.Name
	}
	if f.Path != "" {
		where += " " + f.Path
	}
	return fmt.Sprintf("%s: %s: %s: %s", f.Level, f.Source, where, f.Message)
}

// Object is one rendered document with what admission made of it.
type Object struct {
	Source    string
	GVK       schema.GroupVersionKind
	Namespace string
	Name      string
	Raw       []byte        // JSON as written
	Typed     knativeObject // after SetDefaults, nil when not a Knative kind or not decodable
	Checked   string        // "serving", "eventing", "kubernetes" (strict decoding only), or ""
}

func (o *Object) Key() string {
	return o.GVK.Kind + " " + o.Namespace + "/" + o.Name
}

// admissionUser is the user the webhooks see (the creator/lastModifier annotations of Serving).
var admissionUser = &authenticationv1.UserInfo{Username: "eas-deployer"}

// strictCodecs decode built-in Kubernetes kinds, refusing unknown and duplicate fields as the
// API server's strict field validation (kubectl's default) does.
var strictCodecs = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict)

// Admit decodes o (Raw, GVK, names already set) and runs Knative's defaulting and validation.
func (c *Cluster) Admit(o *Object) []Finding {
	finding := func(path, msg, level string) Finding {
		return Finding{Source: o.Source, Kind: o.GVK.Kind, Namespace: o.Namespace, Name: o.Name,
			Path: path, Message: msg, Level: level}
	}
	var proto knativeObject
	var ctx context.Context
	if t, ok := servingTypes[o.GVK]; ok {
		proto, ctx, o.Checked = t, c.ServingContext(context.Background()), "serving"
	} else if t, ok := eventingTypes[o.GVK]; ok {
		proto, ctx, o.Checked = t, c.EventingContext(context.Background()), "eventing"
	} else if strings.HasSuffix(o.GVK.Group, "knative.dev") {
		return []Finding{finding("", fmt.Sprintf("%s is a Knative kind this program does not check", o.GVK), "error")}
	} else {
		// Not Knative: strict decoding into the Kubernetes Go types when the kind is built in.
		if _, err := scheme.Scheme.New(o.GVK); err != nil {
			return nil // a custom resource of another project: nothing to check here
		}
		o.Checked = "kubernetes"
		if _, _, err := strictCodecs.UniversalDeserializer().Decode(o.Raw, nil, nil); err != nil {
			return []Finding{finding("", "decoding: "+err.Error(), "error")}
		}
		return nil
	}
	obj := proto.DeepCopyObject().(knativeObject)
	// Eventing's webhook refuses unknown fields itself; Serving's leaves that to the CRD
	// schema, which kubectl's strict field validation turns into a refusal: strict for both.
	if err := knjson.Decode(o.Raw, obj, true); err != nil {
		return []Finding{finding("", "decoding: "+err.Error(), "error")}
	}
	ctx = apis.WithUserInfo(apis.WithinCreate(ctx), admissionUser)
	obj.SetDefaults(ctx)
	o.Typed = obj
	var out []Finding
	errs := obj.Validate(ctx)
	for level, name := range map[apis.DiagnosticLevel]string{apis.ErrorLevel: "error", apis.WarningLevel: "warning"} {
		for _, fe := range errs.Filter(level).WrappedErrors() {
			msg := fe.Message
			if fe.Details != "" {
				msg += " (" + fe.Details + ")"
			}
			out = append(out, finding(strings.Join(fe.Paths, ", "), msg, name))
		}
	}
	return out
}
