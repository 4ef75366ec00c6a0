package main

// The cluster's Knative settings, as the webhooks hold them: with no ConfigMap given, those of
// a stock install.

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	evconfig "knative.dev/eventing/pkg/apis/config"
	"knative.dev/eventing/pkg/apis/feature"
	chconfig "knative.dev/eventing/pkg/apis/messaging/config"
	pingconfig "knative.dev/eventing/pkg/apis/sources/config"

	servingconfig "knative.dev/serving/pkg/apis/config"
	asconfig "knative.dev/serving/pkg/autoscaler/config"
)

const (
	servingNamespace  = "knative-serving"
	eventingNamespace = "knative-eventing"
)

// Cluster holds the configuration that Serving's and Eventing's webhooks put in the context.
type Cluster struct {
	Serving  *servingconfig.Config
	Eventing *evconfig.Config
	Features feature.Flags
	Channels *chconfig.Config
	Ping     *pingconfig.Config
}

// stockEventing is what a stock Eventing install puts in the ConfigMaps whose data is not
// empty (config/core/configmaps of knative.dev/eventing v0.50.0): the default Broker class and
// the default channel. Serving's stock ConfigMaps hold only examples, so their defaults are
// those of empty ConfigMaps.
var stockEventing = map[string]map[string]string{
	evconfig.DefaultsConfigName: {"default-br-config": `
clusterDefault:
  brokerClass: MTChannelBasedBroker
  apiVersion: v1
  kind: ConfigMap
  name: config-br-default-channel
  namespace: knative-eventing
  delivery:
    retry: 10
    backoffPolicy: exponential
    backoffDelay: PT0.2S
`},
	chconfig.ChannelDefaultsConfigName: {"default-ch-config": `
clusterDefault:
  apiVersion: messaging.knative.dev/v1
  kind: InMemoryChannel
`},
}

// NewCluster builds the configuration from ConfigMaps of the namespaces knative-serving and
// knative-eventing (config-defaults, config-features, config-autoscaler; config-br-defaults,
// config-features, default-ch-webhook, config-ping-defaults); the others keep their defaults.
func NewCluster(maps []*corev1.ConfigMap) (*Cluster, error) {
	ctx := context.Background()
	var stock []*corev1.ConfigMap
	for name, data := range stockEventing {
		stock = append(stock, &corev1.ConfigMap{Data: data})
		stock[len(stock)-1].Name, stock[len(stock)-1].Namespace = name, eventingNamespace
	}
	maps = append(stock, maps...)
	c := &Cluster{
		Serving:  servingconfig.FromContextOrDefaults(ctx),
		Eventing: evconfig.FromContextOrDefaults(ctx),
		Features: feature.FromContextOrDefaults(ctx),
		Channels: chconfig.FromContextOrDefaults(ctx),
		Ping:     pingconfig.FromContextOrDefaults(ctx),
	}
	for _, cm := range maps {
		var err error
		switch key := cm.Namespace + "/" + cm.Name; key {
		case servingNamespace + "/" + servingconfig.DefaultsConfigName:
			c.Serving.Defaults, err = servingconfig.NewDefaultsConfigFromConfigMap(cm)
		case servingNamespace + "/" + servingconfig.FeaturesConfigName:
			c.Serving.Features, err = servingconfig.NewFeaturesConfigFromConfigMap(cm)
		case servingNamespace + "/" + asconfig.ConfigName:
			c.Serving.Autoscaler, err = asconfig.NewConfigFromConfigMap(cm)
		case eventingNamespace + "/" + evconfig.DefaultsConfigName:
			c.Eventing.Defaults, err = evconfig.NewDefaultsConfigFromConfigMap(cm)
		case eventingNamespace + "/" + feature.FlagsConfigName:
			c.Features, err = feature.NewFlagsConfigFromConfigMap(cm)
		case eventingNamespace + "/" + chconfig.ChannelDefaultsConfigName:
			c.Channels.ChannelDefaults, err = chconfig.NewChannelDefaultsConfigFromConfigMap(cm)
		case eventingNamespace + "/" + pingconfig.PingDefaultsConfigName:
			c.Ping.PingDefaults, err = pingconfig.NewPingDefaultsConfigFromConfigMap(cm)
		default:
			return nil, fmt.Errorf("ConfigMap %s is not one the webhooks read", key)
		}
		if err != nil {
			return nil, fmt.Errorf("ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
		}
	}
	return c, nil
}

// ServingContext is the context Serving's webhook gives SetDefaults and Validate.
func (c *Cluster) ServingContext(ctx context.Context) context.Context {
	return servingconfig.ToContext(ctx, c.Serving)
}

// EventingContext is the context Eventing's webhook gives SetDefaults and Validate.
func (c *Cluster) EventingContext(ctx context.Context) context.Context {
	ctx = evconfig.ToContext(ctx, c.Eventing)
	ctx = pingconfig.ToContext(ctx, c.Ping)
	ctx = chconfig.ToContext(ctx, c.Channels)
	return feature.ToContext(ctx, c.Features)
}
